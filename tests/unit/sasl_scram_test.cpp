// Tests for protocol/sasl SCRAM: RFC vectors (RFC 5802 §5, RFC 7677 §3), an independently
// computed SCRAM-SHA-512 exchange, malicious and malformed server messages, the order of the
// exchange, the client-first-message, SASLprep of the password, the iteration bounds and the
// server's error values (base64: base64_test.cpp).
#include "sasl_fixture.hpp"

using namespace sasl_test;

TEST_CASE("SCRAM-SHA-1 matches the RFC 5802 section 5 example", "[sasl][scram]") {
    auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), std::string(kSha1Nonce));
    CHECK(m->name() == "SCRAM-SHA-1");
    auto first = m->initial_response();
    REQUIRE(first.ok());
    CHECK(first.value() == "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
    auto final_message = m->respond(kSha1ServerFirst);
    REQUIRE(final_message.ok());
    CHECK(final_message.value() == kSha1ClientFinal);
    auto done = m->finish(kSha1ServerFinal);
    CHECK(done.ok());
}

TEST_CASE("SCRAM-SHA-256 matches the RFC 7677 section 3 example", "[sasl][scram]") {
    auto m = xmpp::sasl::make_scram(ScramHash::Sha256, user_pencil(), "rOprNGfwEbeRWgbNEkqO");
    CHECK(m->name() == "SCRAM-SHA-256");
    auto first = m->initial_response();
    REQUIRE(first.ok());
    CHECK(first.value() == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    auto final_message = m->respond(
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
        "i=4096");
    REQUIRE(final_message.ok());
    CHECK(final_message.value() ==
          "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
          "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    auto done = m->finish("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    CHECK(done.ok());
}

TEST_CASE("the independent SCRAM reference reproduces RFC 5802 section 5", "[sasl][scram]") {
    // Validates the helper used for SCRAM-SHA-512 below, which has no RFC vector.
    Independent reference{"SHA1"};
    auto expected = reference.compute("user", "pencil", kSha1Nonce, kSha1ServerFirst,
                                      kSha1ServerNonce, kSha1Salt, 4096);
    CHECK(expected.client_final == kSha1ClientFinal);
    CHECK(expected.server_final == kSha1ServerFinal);
}

TEST_CASE("SCRAM-SHA-512 agrees with an independent computation", "[sasl][scram]") {
    const std::string client_nonce = "rOprNGfwEbeRWgbNEkqO";
    const std::string server_nonce = client_nonce + "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
    const std::string salt = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const std::string server_first = "r=" + server_nonce + ",s=" + salt + ",i=4096";

    Independent reference{"SHA512"};
    auto expected = reference.compute("user", "pencil", client_nonce, server_first,
                                      server_nonce, salt, 4096);
    // SHA-512 output is 64 bytes: 88 base64 characters.
    REQUIRE(expected.server_final.size() == 2 + 88);

    auto m = xmpp::sasl::make_scram(ScramHash::Sha512, user_pencil(), client_nonce);
    CHECK(m->name() == "SCRAM-SHA-512");
    auto first = m->initial_response();
    REQUIRE(first.ok());
    CHECK(first.value() == "n,,n=user,r=" + client_nonce);
    auto final_message = m->respond(server_first);
    REQUIRE(final_message.ok());
    CHECK(final_message.value() == expected.client_final);
    CHECK(m->finish(expected.server_final).ok());

    SECTION("a SHA-256-sized verifier is refused") {
        auto other = xmpp::sasl::make_scram(ScramHash::Sha512, user_pencil(), client_nonce);
        REQUIRE(other->initial_response().ok());
        REQUIRE(other->respond(server_first).ok());
        auto status = other->finish("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
}

TEST_CASE("SCRAM refuses a server that cannot prove it knows the password", "[sasl][scram]") {
    auto m = started_sha1();
    REQUIRE(m->respond(kSha1ServerFirst).ok());

    SECTION("wrong signature of the right length") {
        auto status = m->finish("v=rmF9pqV8S7suAoZWja4dJRkFsKE=");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
    SECTION("signature of the wrong length") {
        auto status = m->finish("v=rmF9pqV8S7suAoZWja4dJRkF");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
    SECTION("verifier is not base64") {
        auto status = m->finish("v=rmF9pqV8S7suAoZWja4dJRkFsKQ");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
    SECTION("no additional data at all") {
        auto status = m->finish("");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
    SECTION("an attribute other than v=") {
        auto status = m->finish("x=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-bad-signature");
    }
    SECTION("e= is reported with the server's value") {
        auto status = m->finish("e=invalid-proof");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-server-error");
        CHECK(status.error().message.find("invalid-proof") != std::string::npos);
    }
    SECTION("the exchange cannot be finished twice") {
        REQUIRE(m->finish(kSha1ServerFinal).ok());
        auto again = m->finish(kSha1ServerFinal);
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "scram-out-of-order");
    }
    SECTION("a failed exchange stays failed") {
        REQUIRE_FALSE(m->finish("v=rmF9pqV8S7suAoZWja4dJRkFsKE=").ok());
        auto again = m->finish(kSha1ServerFinal);
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "scram-out-of-order");
    }
    SECTION("the verifier may be followed by extensions") {
        CHECK(m->finish("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=,x=ext").ok());
    }
}

TEST_CASE("SCRAM rejects a malformed or hostile server-first-message", "[sasl][scram]") {
    auto m = started_sha1();
    auto expect = [&](std::string_view challenge, std::string_view code) {
        INFO("challenge: " << challenge);
        auto response = m->respond(challenge);
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), code);
    };

    SECTION("server nonce does not start with ours") {
        expect(sha1_server_first("xyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j", kSha1Salt, "4096"),
               "scram-bad-nonce");
    }
    SECTION("server nonce equals ours") {
        expect(sha1_server_first(kSha1Nonce, kSha1Salt, "4096"), "scram-bad-nonce");
    }
    SECTION("server nonce is a prefix of ours") {
        expect(sha1_server_first("fyko+d2lbb", kSha1Salt, "4096"), "scram-bad-nonce");
    }
    SECTION("server nonce has a non-printable character") {
        expect(sha1_server_first(std::string(kSha1Nonce) + "ab\x7f", kSha1Salt, "4096"),
               "scram-bad-nonce");
    }
    SECTION("iteration count of zero") {
        expect(sha1_server_first(kSha1ServerNonce, kSha1Salt, "0"), "scram-bad-challenge");
    }
    SECTION("absurd iteration count") {
        expect(sha1_server_first(kSha1ServerNonce, kSha1Salt, "10000000"), "scram-iterations");
    }
    SECTION("one above the iteration limit") {
        expect(sha1_server_first(kSha1ServerNonce, kSha1Salt, "1000001"), "scram-iterations");
    }
    SECTION("iteration count that overflows 64 bits") {
        expect(sha1_server_first(kSha1ServerNonce, kSha1Salt, "99999999999999999999999"),
               "scram-iterations");
    }
    SECTION("negative, signed, padded or non-numeric iteration counts") {
        for (auto count : {"-1", "+4096", "04096", "4096 ", "4k", "0x10"}) {
            auto fresh = started_sha1();
            auto response = fresh->respond(sha1_server_first(kSha1ServerNonce, kSha1Salt, count));
            INFO("i=" << count);
            REQUIRE_FALSE(response.ok());
            require_error(response.error(), "scram-bad-challenge");
        }
    }
    SECTION("empty iteration count") {
        expect(sha1_server_first(kSha1ServerNonce, kSha1Salt, ""), "scram-bad-challenge");
    }
    SECTION("salt with a bad length") {
        expect(sha1_server_first(kSha1ServerNonce, "QSXCR+Q6sek8bf9", "4096"),
               "scram-bad-challenge");
    }
    SECTION("salt with a bad character") {
        expect(sha1_server_first(kSha1ServerNonce, "QSXCR*Q6sek8bf92", "4096"),
               "scram-bad-challenge");
    }
    SECTION("empty salt") {
        expect(sha1_server_first(kSha1ServerNonce, "", "4096"), "scram-bad-challenge");
    }
    SECTION("mandatory extension") {
        expect("m=ext," + std::string(kSha1ServerFirst), "scram-bad-challenge");
    }
    SECTION("attributes out of order") {
        expect("s=QSXCR+Q6sek8bf92,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,i=4096",
               "scram-bad-challenge");
    }
    SECTION("missing iteration count") {
        expect("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92",
               "scram-bad-challenge");
    }
    SECTION("empty challenge") { expect("", "scram-bad-challenge"); }
    SECTION("garbage") { expect("hello", "scram-bad-challenge"); }
    SECTION("embedded NUL") {
        expect(std::string(kSha1ServerFirst) + "\0"s, "scram-bad-challenge");
    }
    SECTION("a failed exchange cannot continue") {
        expect("hello", "scram-bad-challenge");
        auto response = m->respond(kSha1ServerFirst);
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "scram-out-of-order");
    }
}

TEST_CASE("SCRAM accepts what RFC 5802 allows", "[sasl][scram]") {
    SECTION("an optional extension after i= is part of AuthMessage") {
        auto m = started_sha1();
        auto response = m->respond(std::string(kSha1ServerFirst) + ",x=ext");
        REQUIRE(response.ok());
        CHECK(response.value() != kSha1ClientFinal);
        CHECK(response.value().rfind("c=biws,r=" + std::string(kSha1ServerNonce) + ",p=", 0) ==
              0);
    }
    SECTION("the iteration limit itself") {
        auto m = started_sha1();
        CHECK(m->respond(sha1_server_first(kSha1ServerNonce, kSha1Salt, "1000000")).ok());
    }
    SECTION("the iteration floor itself") {
        auto m = started_sha1();
        CHECK(m->respond(sha1_server_first(kSha1ServerNonce, kSha1Salt, "4096")).ok());
    }
}

TEST_CASE("SCRAM enforces the order of the exchange", "[sasl][scram]") {
    SECTION("a second challenge") {
        auto m = started_sha1();
        REQUIRE(m->respond(kSha1ServerFirst).ok());
        auto again = m->respond(kSha1ServerFirst);
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "scram-out-of-order");
        // The server cannot rescue the exchange afterwards.
        CHECK_FALSE(m->finish(kSha1ServerFinal).ok());
    }
    SECTION("server-final sent as a challenge") {
        auto m = started_sha1();
        REQUIRE(m->respond(kSha1ServerFirst).ok());
        auto again = m->respond(kSha1ServerFinal);
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "scram-out-of-order");
    }
    SECTION("success before the challenge") {
        auto m = started_sha1();
        auto status = m->finish(kSha1ServerFinal);
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-out-of-order");
    }
    SECTION("success before anything") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), "abc");
        auto status = m->finish("");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-out-of-order");
    }
    SECTION("a challenge before the initial response") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), "abc");
        auto response = m->respond(kSha1ServerFirst);
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "scram-out-of-order");
    }
    SECTION("two initial responses") {
        auto m = started_sha1();
        auto again = m->initial_response();
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "scram-out-of-order");
    }
}

TEST_CASE("SCRAM client-first-message", "[sasl][scram]") {
    SECTION("',' and '=' in the username are escaped") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha256, {"a,b=c", "pencil", ""}, "nonce");
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "n,,n=a=2Cb=3Dc,r=nonce");
    }
    SECTION("the username is SASLprep'd") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha256, {"I\u00ADX", "pencil", ""}, "nonce");
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "n,,n=IX,r=nonce");
    }
    SECTION("a username SASLprep prohibits") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha256, {"us\u0007er", "pencil", ""}, "n");
        auto first = m->initial_response();
        REQUIRE_FALSE(first.ok());
        require_error(first.error(), "saslprep");
    }
    SECTION("an empty username") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha256, {"", "pencil", ""}, "nonce");
        auto first = m->initial_response();
        REQUIRE_FALSE(first.ok());
        require_error(first.error(), "empty-username");
    }
    SECTION("authzid goes into the gs2 header and c=") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, {"user", "pencil", "ad,m=n"},
                                        std::string(kSha1Nonce));
        auto first = m->initial_response();
        REQUIRE(first.ok());
        // RFC 5802 §7: gs2-header = "n," authzid "," and client-first-message-bare follows.
        CHECK(first.value() == "n,a=ad=2Cm=3Dn,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        auto response = m->respond(kSha1ServerFirst);
        REQUIRE(response.ok());
        CHECK(response.value().rfind(
                  "c=" + xmpp::base64_encode("n,a=ad=2Cm=3Dn,") + ",r=", 0) == 0);
    }
    SECTION("a client nonce with a comma is refused") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), "ab,c");
        auto first = m->initial_response();
        REQUIRE_FALSE(first.ok());
        require_error(first.error(), "scram-bad-nonce");
    }
    SECTION("a random nonce is 24 bytes of base64 and differs each time") {
        auto a = xmpp::sasl::make_scram(ScramHash::Sha256, user_pencil());
        auto b = xmpp::sasl::make_scram(ScramHash::Sha256, user_pencil());
        auto first_a = a->initial_response();
        auto first_b = b->initial_response();
        REQUIRE(first_a.ok());
        REQUIRE(first_b.ok());
        const std::string prefix = "n,,n=user,r=";
        REQUIRE(first_a.value().rfind(prefix, 0) == 0);
        std::string nonce = first_a.value().substr(prefix.size());
        CHECK(nonce.size() == 32);
        auto raw = xmpp::base64_decode(nonce);
        REQUIRE(raw.ok());
        CHECK(raw.value().size() == 24);
        CHECK(first_a.value() != first_b.value());

        // The random nonce is the one the exchange checks the server's against.
        auto response = a->respond("r=" + nonce + "srv,s=QSXCR+Q6sek8bf92,i=4096");
        CHECK(response.ok());
    }
}

TEST_CASE("SCRAM normalizes the password with SASLprep", "[sasl][scram]") {
    // RFC 4013 §2.1: non-ASCII space characters map to SPACE, so "pen\u00A0cil" and
    // "pen cil" must produce the same proof.
    auto run = [](std::string password) {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, {"user", password, ""},
                                        std::string(kSha1Nonce));
        REQUIRE(m->initial_response().ok());
        auto response = m->respond(kSha1ServerFirst);
        REQUIRE(response.ok());
        return response.value();
    };
    auto nbsp = run("pen\u00A0cil");
    CHECK(nbsp == run("pen cil"));
    CHECK(nbsp != kSha1ClientFinal);
    CHECK(run("pen\u00ADcil") == kSha1ClientFinal);  // soft hyphen maps to nothing

    auto m = xmpp::sasl::make_scram(ScramHash::Sha1, {"user", "pen\u0007cil", ""},
                                    std::string(kSha1Nonce));
    REQUIRE(m->initial_response().ok());
    auto response = m->respond(kSha1ServerFirst);
    REQUIRE_FALSE(response.ok());
    require_error(response.error(), "saslprep");
}

TEST_CASE("SCRAM: the PBKDF2 iteration count has a floor and a ceiling", "[sasl][scram]") {
    auto refuse = [](std::string_view count) {
        auto m = started_sha1();
        auto response = m->respond(sha1_server_first(kSha1ServerNonce, kSha1Salt, count));
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "scram-iterations");
        return response.error().message;
    };
    CHECK(refuse("4095") ==
          "the server asks for only 4095 PBKDF2 iterations (at least 4096 required, RFC 5802 "
          "§5.1)");
    CHECK(refuse("1") ==
          "the server asks for only 1 PBKDF2 iterations (at least 4096 required, RFC 5802 "
          "§5.1)");
    CHECK(refuse("10000000") ==
          "the server asks for 10000000 PBKDF2 iterations (at most 1000000 accepted: more "
          "would stall the daemon at every login)");
}

TEST_CASE("SCRAM: the server's error values are explained", "[sasl][scram]") {
    auto finished = [](std::string_view final_message) {
        auto m = started_sha1();
        REQUIRE(m->respond(kSha1ServerFirst).ok());
        auto status = m->finish(final_message);
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "scram-server-error");
        return status.error().message;
    };
    CHECK(finished("e=channel-bindings-dont-match").find("intercepting") != std::string::npos);
    CHECK(finished("e=server-does-support-channel-binding").find("removed") != std::string::npos);
    CHECK(finished("e=invalid-proof").find("wrong password") != std::string::npos);
    CHECK(finished("e=other-error,x=1") == "the server rejected the SCRAM exchange: other-error");

    // Sent as a second challenge instead of with <failure/> or <success/>.
    auto m = started_sha1();
    REQUIRE(m->respond(kSha1ServerFirst).ok());
    auto response = m->respond("e=channel-bindings-dont-match");
    REQUIRE_FALSE(response.ok());
    require_error(response.error(), "scram-server-error");
    CHECK(response.error().message.find("channel-bindings-dont-match") != std::string::npos);
}
