// The resident memory any dynamically linked OpenSSL 3 client pays before it does anything:
// the same steps as the daemon's first TLS connection (library loaded, OPENSSL_init_ssl,
// a client SSL_CTX, an SSL), with the process's Rss and libcrypto's share after each.
// It is the floor under stanzad's idle RSS (docs/performance.md "Memory").
//
//   build/bench/rss_floor            # error strings loaded, as the daemon does
//   build/bench/rss_floor --no-strings
#include <openssl/ssl.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace {

void show(const char* step) {
    std::ifstream smaps("/proc/self/smaps");
    std::string line, mapping;
    long total = 0, crypto = 0, ssl = 0;
    while (std::getline(smaps, line)) {
        unsigned long from = 0, to = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx", &from, &to) == 2) {
            auto space = line.rfind(' ');
            mapping = space == std::string::npos ? "" : line.substr(space + 1);
            continue;
        }
        long kib = 0;
        if (std::sscanf(line.c_str(), "Rss: %ld kB", &kib) != 1) continue;
        total += kib;
        if (mapping.find("libcrypto") != std::string::npos) crypto += kib;
        if (mapping.find("libssl") != std::string::npos) ssl += kib;
    }
    std::printf("%-28s Rss %5.1f MiB  (libcrypto %4.1f MiB, libssl %4.1f MiB)\n", step, total / 1024.0,
                crypto / 1024.0, ssl / 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
    const bool no_strings = argc > 1 && std::strcmp(argv[1], "--no-strings") == 0;
    show("libraries loaded");
    OPENSSL_init_ssl(no_strings ? OPENSSL_INIT_NO_LOAD_SSL_STRINGS | OPENSSL_INIT_NO_LOAD_CRYPTO_STRINGS : 0, nullptr);
    show("OPENSSL_init_ssl");
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    show("SSL_CTX_new (client)");
    SSL* ssl = SSL_new(ctx);
    show("SSL_new");
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return 0;
}
