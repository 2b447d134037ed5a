#pragma once
// A fresh directory for one test's store, removed with everything in it afterwards.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace stanzad::test {

class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "stanzad-test-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    // The store path, inside a subdirectory that Store::open has to create.
    std::string store() const { return path_ + "/state/store.db"; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

}  // namespace stanzad::test
