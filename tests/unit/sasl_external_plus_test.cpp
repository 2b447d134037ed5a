// Tests for protocol/sasl: EXTERNAL, SCRAM-*-PLUS with each channel-binding type against an
// independent computation, the gs2 flag, and XEP-0474 (the signed offer).
#include "sasl_fixture.hpp"

using namespace sasl_test;

TEST_CASE("EXTERNAL sends an empty response and expects nothing back", "[sasl][external]") {
    auto m = xmpp::sasl::make_external();
    CHECK(m->name() == "EXTERNAL");
    auto first = m->initial_response();
    REQUIRE(first.ok());
    CHECK(first.value().empty());  // "=" on the wire (RFC 6120 §6.4.2)
    CHECK(m->finish("").ok());

    SECTION("an empty challenge is answered once, anything else is an error") {
        auto e = xmpp::sasl::make_external();
        REQUIRE(e->initial_response().ok());
        auto empty = e->respond("");
        REQUIRE(empty.ok());
        CHECK(empty.value().empty());
        auto again = e->respond("");
        REQUIRE_FALSE(again.ok());
        require_error(again.error(), "external-unexpected-challenge");
        auto data = xmpp::sasl::make_external()->respond("x");
        REQUIRE_FALSE(data.ok());
        require_error(data.error(), "external-unexpected-challenge");
    }
    SECTION("additional data on success is an error") {
        auto status = xmpp::sasl::make_external()->finish("x");
        REQUIRE_FALSE(status.ok());
        require_error(status.error(), "external-unexpected-data");
    }
    SECTION("an authzid, when asked for, is the whole message") {
        auto as = xmpp::sasl::make_external("juliet@example.com");
        auto response = as->initial_response();
        REQUIRE(response.ok());
        CHECK(response.value() == "juliet@example.com");
    }
}

TEST_CASE("SCRAM-*-PLUS: each binding type agrees with an independent computation",
          "[sasl][scram][plus]") {
    SECTION("tls-exporter, the default under TLS 1.3 when binding is required, with SHA-256") {
        auto setup = setup_with(channel("TLSv1.3"), ChannelBindingPolicy::Required);
        auto c = chosen(offer({"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "PLAIN"}), setup);
        CHECK(c.mechanism->name() == "SCRAM-SHA-256-PLUS");
        CHECK(c.description == "SCRAM-SHA-256-PLUS, tls-exporter");
        run_against_reference(c, "SHA256", "p=tls-exporter,," + setup.channel.tls_exporter);
    }
    SECTION("tls-server-end-point, from the server's list, with SHA-512") {
        auto setup = setup_with(channel("TLSv1.3"));
        auto c = chosen(offer({"SCRAM-SHA-512-PLUS"}, {{"tls-server-end-point"}}), setup);
        CHECK(c.description == "SCRAM-SHA-512-PLUS, tls-server-end-point");
        run_against_reference(c, "SHA512",
                              "p=tls-server-end-point,," + setup.channel.tls_server_end_point);
    }
    SECTION("tls-unique, the default under TLS 1.2 without a list, with SHA-1") {
        auto setup = setup_with(channel("TLSv1.2"));
        auto c = chosen(offer({"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"}), setup);
        CHECK(c.description == "SCRAM-SHA-1-PLUS, tls-unique");
        run_against_reference(c, "SHA1", "p=tls-unique,," + setup.channel.tls_unique);
    }
    SECTION("an authzid sits between the flag and the binding data") {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, {"user", "pencil", "admin"},
                                        std::string(kSha1Nonce),
                                        {{"tls-exporter", "\x01\x02"s, false}, {}, false});
        CHECK(m->name() == "SCRAM-SHA-1-PLUS");
        auto first = m->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value() == "p=tls-exporter,a=admin,n=user,r=" + std::string(kSha1Nonce));
        auto response = m->respond(kSha1ServerFirst);
        REQUIRE(response.ok());
        CHECK(response.value().rfind(
                  "c=" + Independent::b64("p=tls-exporter,a=admin,\x01\x02"s) + ",r=", 0) == 0);
    }
    SECTION("a type without data, or a malformed type, is refused before anything goes out") {
        for (auto binding : {xmpp::sasl::ChannelBinding{"tls-exporter", "", false},
                             xmpp::sasl::ChannelBinding{"tls,exporter", "x", false}}) {
            auto m = xmpp::sasl::make_scram(ScramHash::Sha256, user_pencil(), "n",
                                            {binding, {}, false});
            auto first = m->initial_response();
            REQUIRE_FALSE(first.ok());
            require_error(first.error(), "scram-bad-binding");
        }
    }
}

TEST_CASE("SCRAM: the gs2 flag says whether we could bind", "[sasl][scram][plus]") {
    SECTION("binding data but no -PLUS offered: 'y' (RFC 5802 §6)") {
        auto c = chosen(offer({"SCRAM-SHA-1", "PLAIN"}), setup_with(channel("TLSv1.3")));
        CHECK(c.description == "SCRAM-SHA-1");
        CHECK_FALSE(c.failure_hint.empty());
        run_against_reference(c, "SHA1", "y,,");
    }
    SECTION("no binding data: 'n'") {
        auto c = chosen(offer({"SCRAM-SHA-1", "SCRAM-SHA-1-PLUS"}), setup_with(TlsChannel{}));
        CHECK(c.description == "SCRAM-SHA-1");
        CHECK(c.failure_hint.empty());
        run_against_reference(c, "SHA1", "n,,");
    }
    SECTION("tls-unique is not used under TLS 1.3 (RFC 9266 §3), even when listed: 'n'") {
        TlsChannel unique_only;
        unique_only.version = "TLSv1.3";
        unique_only.tls_unique = "0123456789ab";
        auto c = chosen(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-unique"}}),
                        setup_with(unique_only));
        CHECK(c.description == "SCRAM-SHA-256");
        run_against_reference(c, "SHA256", "n,,");
    }
}

TEST_CASE("XEP-0474: the hash of the offer", "[sasl][ssdp]") {
    // The example of XEP-0474 §5.3 (SHA-1 of
    // "SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point").
    CHECK(xmpp::sasl::offer_hash(ScramHash::Sha1,
                                 offer({"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"},
                                       {{"tls-server-end-point", "tls-exporter"}})) ==
          "G6k/rBLDqgOhRRaCuuatSDFkJ08=");
    // Sorted by octets ('-' < 'P' < 'S'), the hash of the mechanism in use, and no %x1F
    // without a XEP-0440 list; an empty list still adds it.
    CHECK(xmpp::sasl::offer_hash(ScramHash::Sha256,
                                 offer({"SCRAM-SHA-256", "PLAIN", "SCRAM-SHA-1", "EXTERNAL"})) ==
          ssdp("SHA256", "EXTERNAL\x1ePLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-256"));
    CHECK(xmpp::sasl::offer_hash(ScramHash::Sha512, offer({"SCRAM-SHA-512"}, {{}})) ==
          ssdp("SHA512", "SCRAM-SHA-512\x1f"));
}

TEST_CASE("XEP-0474: the signed offer is checked in the server-first-message", "[sasl][ssdp]") {
    const Offer seen = offer({"SCRAM-SHA-1", "PLAIN"}, {{"tls-exporter"}});
    auto started = [&](bool require_hash = false) {
        auto m = xmpp::sasl::make_scram(ScramHash::Sha1, user_pencil(), std::string(kSha1Nonce),
                                        {{}, seen, require_hash});
        REQUIRE(m->initial_response().ok());
        return m;
    };

    SECTION("a matching h= is part of the exchange") {
        std::string server_first = std::string(kSha1ServerFirst) + ",h=" +
                                   ssdp("SHA1", "PLAIN\x1eSCRAM-SHA-1\x1ftls-exporter");
        Independent reference{"SHA1"};
        auto expected = reference.compute("user", "pencil", kSha1Nonce, server_first,
                                          kSha1ServerNonce, kSha1Salt, 4096);
        auto m = started();
        auto response = m->respond(server_first);
        REQUIRE(response.ok());
        CHECK(response.value() == expected.client_final);
        CHECK(m->finish(expected.server_final).ok());
    }
    SECTION("a stripped -PLUS is found and named") {
        auto m = started();
        auto response = m->respond(
            std::string(kSha1ServerFirst) + ",h=" +
            ssdp("SHA1", "PLAIN\x1eSCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter"));
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
        CHECK(response.error().message ==
              "downgrade detected: the server signed mechanisms PLAIN, SCRAM-SHA-1, "
              "SCRAM-SHA-1-PLUS with channel bindings tls-exporter but offered PLAIN, "
              "SCRAM-SHA-1 with channel bindings tls-exporter (XEP-0474)");
    }
    SECTION("a stripped channel-binding list is found and named") {
        auto m = started();
        auto response = m->respond(std::string(kSha1ServerFirst) + ",h=" +
                                   ssdp("SHA1", "PLAIN\x1eSCRAM-SHA-1\x1ftls-exporter\x1e"
                                                "tls-server-end-point"));
        REQUIRE_FALSE(response.ok());
        CHECK(response.error().message.find("signed mechanisms PLAIN, SCRAM-SHA-1 with "
                                            "channel bindings tls-exporter, "
                                            "tls-server-end-point but offered") !=
              std::string::npos);
    }
    SECTION("a hash that matches nothing we can guess") {
        auto m = started();
        auto response = m->respond(std::string(kSha1ServerFirst) + ",h=" + ssdp("SHA1", "X"));
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
        CHECK(response.error().message.find("are not the ones it offered (PLAIN, SCRAM-SHA-1 "
                                            "with channel bindings tls-exporter)") !=
              std::string::npos);
    }
    SECTION("the hash of another algorithm does not match") {
        auto m = started();
        auto response = m->respond(std::string(kSha1ServerFirst) + ",h=" +
                                   ssdp("SHA256", "PLAIN\x1eSCRAM-SHA-1\x1ftls-exporter"));
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
    }
    SECTION("no h=: nothing to check, unless only a signature could clear the offer") {
        CHECK(started()->respond(kSha1ServerFirst).ok());
        auto response = started(true)->respond(kSha1ServerFirst);
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
        CHECK(response.error().message.find("XEP-0440") != std::string::npos);
    }
    SECTION("two h= attributes") {
        std::string h = ",h=" + ssdp("SHA1", "PLAIN\x1eSCRAM-SHA-1\x1ftls-exporter");
        auto response = started()->respond(std::string(kSha1ServerFirst) + h + h);
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "scram-bad-challenge");
    }
    SECTION("without an offer to check against, h= is just an extension") {
        auto m = started_sha1();
        CHECK(m->respond(std::string(kSha1ServerFirst) + ",h=" + ssdp("SHA1", "X")).ok());
    }
    SECTION("a list without tls-server-end-point and nothing we can use needs the signature") {
        auto c = chosen(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-unique"}}),
                        setup_with(channel("TLSv1.3")));
        auto first = c.mechanism->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value().rfind("n,,", 0) == 0);
        std::string nonce = first.value().substr(first.value().find("r=") + 2);
        auto response = c.mechanism->respond("r=" + nonce + "x,s=QSXCR+Q6sek8bf92,i=4096");
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
        // With tls-server-end-point on the list it is our own limit, not a sign of tampering.
        TlsChannel exporter_only = channel("TLSv1.3");
        exporter_only.tls_server_end_point.clear();
        auto ok = chosen(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-server-end-point"}}),
                         setup_with(exporter_only));
        CHECK(ok.description == "SCRAM-SHA-256");
        run_against_reference(ok, "SHA256", "n,,");
    }
}
