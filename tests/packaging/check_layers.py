#!/usr/bin/python3
"""The dependency rule between the layers (DESIGN.md, "Layers"), checked on the sources.

Arrows point down only. This script reads every C++ file under config/, protocol/ and
frontends/, and the CMakeLists.txt of those layers, and fails (exit 1, one line per
violation: file:line: rule) when one of these rules is broken:

Includes (a quoted #include "dir/..." names a file of ours; <...> names a library):
  1. protocol/base/ includes nothing of ours outside protocol/base/, and no library but the
     C++ standard library and libidn (<stringprep.h>): no XML (pugixml), no crypto
     (OpenSSL), no I/O (libuv, sockets, SQLite, spdlog, ...).
  2. protocol/ includes nothing of daemon/, config/, ctl/ or frontends/. One exception, the
     arrow the design draws: protocol/im/ (the IM core) may include frontends/model
     (frontends/model/...).
  3. The protocol codecs (protocol/ outside im/) never include protocol/im/.
  4. frontends/ includes of protocol/ only protocol/base/, nothing of daemon/, config/ or
     ctl/, and no XML, crypto, libuv or SQLite headers: front ends never see XML. The model
     (frontends/model/) includes of frontends/ only frontends/model/: the sessions (irc/,
     jsonl/) sit on it, never the other way.
  5. config/ includes of protocol/ only protocol/base/, and nothing of daemon/,
     frontends/ or ctl/.

Link targets (CMake), the same rules one level up:
  6. stanzad_base links no target of ours (stanzad_*) and neither pugixml nor OpenSSL.
  7. stanzad_config and stanzad_model (frontends/model/) link stanzad_base and no other
     target of ours; stanzad_frontends
     links stanzad_base, and of ours at most front-end targets (stanzad_frontends*,
     stanzad_model*), never stanzad_protocol, stanzad_config or stanzad_daemon. The codecs
     (stanzad_protocol) link only stanzad_base of ours; the IM core (stanzad_im,
     protocol/im/) links the codecs and at most the model, never a front end or the daemon.

Usage: check_layers.py [SOURCE_DIR]   (default: the checkout this script is in)
"""
import pathlib
import re
import sys

SOURCES = (".cpp", ".hpp", ".h", ".cc")
OURS = ("protocol/", "frontends/", "daemon/", "config/", "ctl/", "tests/", "bench/")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')

# Libraries protocol/base may use besides the standard library.
BASE_LIBRARIES = ("stringprep.h",)
# Headers that mean XML, crypto or I/O: never in base/ or frontends/.
FORBIDDEN_IN_FRONTENDS = ("pugixml", "openssl/", "uv.h", "uv/", "sqlite3", "ares", "spdlog/")


def is_standard_header(name):
    """<string>, <cstdint>, <sys/...>? Standard C++ headers have no '.' and no '/'."""
    return "/" not in name and "." not in name


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield number, m.group(1), m.group(2)


def check_includes(root):
    problems = []

    def bad(path, number, message):
        problems.append(f"{path.relative_to(root)}:{number}: {message}")

    for layer in ("protocol", "frontends", "config"):
        for path in sorted((root / layer).rglob("*")):
            if path.suffix not in SOURCES or not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            for number, kind, name in includes(path):
                ours = kind == '"' and name.startswith(OURS)
                if rel.startswith("protocol/base/"):
                    if kind == '"' and not name.startswith("protocol/base/"):
                        bad(path, number, f'protocol/base includes "{name}": base includes nothing of ours outside base (rule 1)')
                    elif kind == "<" and not is_standard_header(name) and name not in BASE_LIBRARIES:
                        bad(path, number, f"protocol/base includes <{name}>: only the standard library and libidn (rule 1)")
                elif rel.startswith("protocol/"):
                    if ours and name.startswith(("daemon/", "config/", "ctl/", "frontends/")):
                        model = name.startswith("frontends/model/")
                        if not (rel.startswith("protocol/im/") and model):
                            bad(path, number, f'protocol includes "{name}": protocol never includes the layers above it (rule 2)')
                    if ours and name.startswith("protocol/im/") and not rel.startswith("protocol/im/"):
                        bad(path, number, f'a protocol codec includes "{name}": the codecs never include protocol/im (rule 3)')
                elif rel.startswith("frontends/"):
                    if ours and name.startswith("protocol/") and not name.startswith("protocol/base/"):
                        bad(path, number, f'frontends includes "{name}": front ends reach protocol only through protocol/base (rule 4)')
                    if ours and name.startswith(("daemon/", "config/", "ctl/")):
                        bad(path, number, f'frontends includes "{name}" (rule 4)')
                    if (rel.startswith("frontends/model/") and ours and name.startswith("frontends/")
                            and not name.startswith("frontends/model/")):
                        bad(path, number, f'the model includes "{name}": the sessions sit on the model, never the other way (rule 4)')
                    if kind == "<" and name.startswith(FORBIDDEN_IN_FRONTENDS):
                        bad(path, number, f"frontends includes <{name}>: no XML, crypto or I/O in front ends (rule 4)")
                elif rel.startswith("config/"):
                    if ours and name.startswith("protocol/") and not name.startswith("protocol/base/"):
                        bad(path, number, f'config includes "{name}": config reaches protocol only through protocol/base (rule 5)')
                    if ours and name.startswith(("daemon/", "frontends/", "ctl/")):
                        bad(path, number, f'config includes "{name}" (rule 5)')
    return problems


def link_libraries(cmake_text, target):
    """Every item of every target_link_libraries(target ...) call, keywords dropped."""
    items = []
    for m in re.finditer(r"target_link_libraries\s*\(\s*" + re.escape(target) + r"\s+([^)]*)\)", cmake_text):
        body = re.sub(r"#[^\n]*", "", m.group(1))
        items += [w for w in body.split() if w not in ("PUBLIC", "PRIVATE", "INTERFACE")]
    return items


def check_targets(root):
    problems = []
    files = {
        "stanzad_base": root / "protocol/base/CMakeLists.txt",
        "stanzad_frontends": root / "frontends/CMakeLists.txt",
        "stanzad_model": root / "frontends/CMakeLists.txt",
        "stanzad_config": root / "config/CMakeLists.txt",
        "stanzad_protocol": root / "protocol/CMakeLists.txt",
        "stanzad_im": root / "protocol/im/CMakeLists.txt",
    }
    # Of our targets, what each may link (rule 7; stanzad_base is rule 6).
    may_link = {
        "stanzad_config": ("stanzad_base",),
        "stanzad_model": ("stanzad_base",),
        "stanzad_frontends": ("stanzad_base", "stanzad_frontends", "stanzad_model"),
        "stanzad_protocol": ("stanzad_base",),
        "stanzad_im": ("stanzad_base", "stanzad_protocol", "stanzad_model"),
    }
    for target, path in files.items():
        if not path.is_file():
            problems.append(f"{path.relative_to(root)}: missing (it defines {target})")
            continue
        text = path.read_text(encoding="utf-8")
        if not re.search(r"add_library\s*\(\s*" + re.escape(target) + r"\b", text):
            problems.append(f"{path.relative_to(root)}: does not define {target}")
            continue
        libraries = link_libraries(text, target)
        if target == "stanzad_base":
            for lib in libraries:
                if lib.startswith("stanzad_") or lib.startswith(("pugixml", "OpenSSL")):
                    problems.append(f"{path.relative_to(root)}: stanzad_base links {lib} (rule 6)")
        else:
            if not any(lib in ("stanzad_base", "stanzad_protocol") for lib in libraries):
                problems.append(f"{path.relative_to(root)}: {target} does not link stanzad_base (rule 7)")
            allowed = may_link[target]
            for lib in libraries:
                if lib.startswith("stanzad_") and not lib.startswith(allowed):
                    problems.append(f"{path.relative_to(root)}: {target} links {lib}; of ours only {', '.join(allowed)} (rule 7)")
    return problems


def main():
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2])
    problems = check_includes(root) + check_targets(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} violation(s) of the layer rule (see the docstring of {__file__})")
        return 1
    print("check_layers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
