#!/usr/bin/python3
"""Each layer's include path exposes only the layers it may use (DESIGN.md, "Layers").

CMake compiles every layer against a view of the source tree (stanzad_layer_view in the
top CMakeLists.txt). This script takes the real compile command of one source file of each
layer from the build's compile_commands.json, swaps the source for a probe that includes
one header, and compiles it with -fsyntax-only:
  - every header the layer must not see fails with "not found" (the header exists in the
    source tree, so only the include path can hide it);
  - every header it may use compiles (the probe and the flags are sound).
check_layers.py reads the sources for the same rule, and the link lines.

Usage: check_layer_paths.py BUILD_DIR SOURCE_DIR
"""
import json
import pathlib
import shlex
import subprocess
import sys
import tempfile

# (a source file of the layer, headers it must not see, headers it may use)
LAYERS = [
    ("protocol/base/jid.cpp",
     ["protocol/stream.hpp", "protocol/im/session.hpp", "frontends/model/model.hpp",
      "config/config.hpp", "daemon/store.hpp"],
     ["protocol/base/result.hpp"]),
    ("frontends/model/codec.cpp",
     ["frontends/irc/session.hpp", "frontends/jsonl/session.hpp", "protocol/im.hpp",
      "daemon/store.hpp"],
     ["frontends/model/model.hpp", "protocol/base/jid.hpp"]),
    ("frontends/irc/session.cpp",
     ["protocol/im/session.hpp", "protocol/stream.hpp", "config/config.hpp",
      "daemon/hub.hpp"],
     ["frontends/jsonl/session.hpp", "frontends/model/model.hpp", "protocol/base/jid.hpp"]),
    ("config/config.cpp",
     ["protocol/stream.hpp", "frontends/model/model.hpp", "daemon/hub.hpp"],
     ["config/config.hpp", "protocol/base/jid.hpp"]),
    ("protocol/stream.cpp",
     ["protocol/im/session.hpp", "frontends/model/model.hpp", "daemon/hub.hpp",
      "config/config.hpp", "frontends/irc/session.hpp"],
     ["protocol/im.hpp", "protocol/omemo/stanza.hpp", "protocol/base/jid.hpp"]),
    ("protocol/im/session.cpp",
     ["daemon/hub.hpp", "config/config.hpp", "frontends/irc/session.hpp",
      "frontends/jsonl/session.hpp"],
     ["protocol/im/session.hpp", "protocol/stream.hpp", "frontends/model/model.hpp",
      "protocol/base/jid.hpp"]),
]


def compile_command(entries, source):
    """The arguments that compile SOURCE, without output, dependency files and the source."""
    for entry in entries:
        if pathlib.Path(entry["file"]).resolve() == source.resolve():
            args = entry.get("arguments") or shlex.split(entry["command"])
            kept, skip = [], False
            for arg in args:
                if skip:
                    skip = False
                elif arg in ("-o", "-MF", "-MT", "-MQ"):
                    skip = True
                elif arg in ("-c", "-MD", "-MMD") or arg == entry["file"]:
                    pass
                else:
                    kept.append(arg)
            return kept, entry["directory"]
    return None, None


def probe(args, directory, header, scratch):
    source = scratch / "probe.cpp"
    source.write_text(f'#include "{header}"\n')
    return subprocess.run(args + ["-fsyntax-only", str(source)], cwd=directory,
                          capture_output=True, text=True)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    build, root = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    entries = json.loads((build / "compile_commands.json").read_text())
    problems, checked = [], 0
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        for source, hidden, visible in LAYERS:
            args, directory = compile_command(entries, root / source)
            if args is None:
                problems.append(f"{source}: not in {build}/compile_commands.json")
                continue
            for header in hidden:
                if not (root / header).exists():
                    problems.append(f"{source}: {header} does not exist; update this list")
                    continue
                result = probe(args, directory, header, scratch)
                checked += 1
                if result.returncode == 0:
                    problems.append(f"{source}: its layer can include {header}")
                elif header not in result.stderr or not (
                        "No such file" in result.stderr or "not found" in result.stderr):
                    problems.append(f"{source}: {header} failed for another reason:\n"
                                    + result.stderr[-2000:])
            for header in visible:
                result = probe(args, directory, header, scratch)
                checked += 1
                if result.returncode != 0:
                    problems.append(f"{source}: its layer cannot compile {header}:\n"
                                    + result.stderr[-2000:])
    for problem in problems:
        print(problem)
    print(f"{checked} includes probed over {len(LAYERS)} layers, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
