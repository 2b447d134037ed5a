// Tests for protocol/sasl choose(): the strongest acceptable mechanism and why none is, the
// binding type (XEP-0440 list, else the TLS version), channel_binding = required, and EXTERNAL
// only with a certificate.
#include "sasl_fixture.hpp"

using namespace sasl_test;

TEST_CASE("choose picks the strongest acceptable mechanism", "[sasl][choose]") {
    auto pick = [](std::vector<std::string> offered, bool tls) {
        auto chosen = choose_from(offered, user_pencil(), tls);
        REQUIRE(chosen.ok());
        REQUIRE(chosen.value().mechanism != nullptr);
        CHECK(chosen.value().description == chosen.value().mechanism->name());
        return std::string(chosen.value().mechanism->name());
    };
    CHECK(pick({"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512"}, true) ==
          "SCRAM-SHA-512");
    CHECK(pick({"SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN"}, true) == "SCRAM-SHA-256");
    CHECK(pick({"PLAIN", "SCRAM-SHA-1"}, true) == "SCRAM-SHA-1");
    CHECK(pick({"SCRAM-SHA-1"}, false) == "SCRAM-SHA-1");
    CHECK(pick({"PLAIN"}, true) == "PLAIN");
    CHECK(pick({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "EXTERNAL"}, false) == "SCRAM-SHA-1");
    CHECK(pick({"X-OAUTH2", "DIGEST-MD5", "SCRAM-SHA-256"}, false) == "SCRAM-SHA-256");

    // The chosen mechanism carries the credentials.
    auto chosen = choose_from({"PLAIN"}, user_pencil(), true);
    REQUIRE(chosen.ok());
    auto first = chosen.value().mechanism->initial_response();
    REQUIRE(first.ok());
    CHECK(first.value() == "\0user\0pencil"s);
}

TEST_CASE("choose explains why nothing is acceptable", "[sasl][choose]") {
    auto refuse = [](std::vector<std::string> offered, bool tls) {
        auto chosen = choose_from(offered, user_pencil(), tls);
        REQUIRE_FALSE(chosen.ok());
        CHECK(chosen.error().code == "no-mechanism");
        return chosen.error().message;
    };

    auto plain = refuse({"PLAIN"}, false);
    CHECK(plain.find("PLAIN is refused outside TLS") != std::string::npos);

    auto plus = refuse({"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"}, true);
    CHECK(plus.find("SCRAM-SHA-1-PLUS") != std::string::npos);
    CHECK(plus.find("SCRAM-SHA-256-PLUS") != std::string::npos);
    CHECK(plus.find("-PLUS") != std::string::npos);

    auto both = refuse({"SCRAM-SHA-512-PLUS", "PLAIN", "EXTERNAL"}, false);
    CHECK(both.find("EXTERNAL") != std::string::npos);
    CHECK(both.find("PLAIN is refused outside TLS") != std::string::npos);

    auto none = refuse({}, true);
    CHECK(none.find("none") != std::string::npos);

    // Names are matched exactly (RFC 4422 §3.1 names are upper case).
    refuse({"scram-sha-1", "plain"}, true);

    // Server-supplied names are sanitized before they reach a log.
    auto hostile = refuse({"EVIL\x1b[2J"}, true);
    CHECK(hostile.find('\x1b') == std::string::npos);
}

TEST_CASE("choose: the binding type follows the XEP-0440 list, else the TLS version",
          "[sasl][choose][plus]") {
    auto description = [](const Offer& o, TlsChannel c,
                          ChannelBindingPolicy policy = ChannelBindingPolicy::Auto) {
        return chosen(o, setup_with(std::move(c), policy)).description;
    };
    // Our preference on a list: tls-exporter > tls-server-end-point > tls-unique.
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}, {{"tls-unique", "tls-server-end-point"}}),
                      channel("TLSv1.2")) == "SCRAM-SHA-256-PLUS, tls-server-end-point");
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}, {{"tls-unique", "tls-exporter"}}),
                      channel("TLSv1.2")) == "SCRAM-SHA-256-PLUS, tls-exporter");
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}, {{"tls-unique"}}), channel("TLSv1.2")) ==
          "SCRAM-SHA-256-PLUS, tls-unique");
    // Only types we have data for.
    auto no_exporter = channel("TLSv1.3");
    no_exporter.tls_exporter.clear();
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}, {{"tls-exporter", "tls-server-end-point"}}),
                      no_exporter) == "SCRAM-SHA-256-PLUS, tls-server-end-point");
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}), no_exporter, ChannelBindingPolicy::Required) ==
          "SCRAM-SHA-256-PLUS, tls-server-end-point");
    // Without a list: TLS 1.3 no guess unless required, then tls-exporter (RFC 9266 §3);
    // TLS 1.2 tls-unique (RFC 5802 §6), then the others.
    CHECK(description(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}), channel("TLSv1.3")) ==
          "SCRAM-SHA-256");
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}), channel("TLSv1.3"),
                      ChannelBindingPolicy::Required) == "SCRAM-SHA-256-PLUS, tls-exporter");
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}), channel("TLSv1.2")) ==
          "SCRAM-SHA-256-PLUS, tls-unique");
    auto no_unique = channel("TLSv1.2");
    no_unique.tls_unique.clear();
    CHECK(description(offer({"SCRAM-SHA-256-PLUS"}), no_unique) ==
          "SCRAM-SHA-256-PLUS, tls-exporter");
    // -PLUS before hash strength; then SHA-512 > SHA-256 > SHA-1.
    CHECK(description(offer({"SCRAM-SHA-512", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256"}, {{"tls-exporter"}}),
                      channel("TLSv1.3")) == "SCRAM-SHA-1-PLUS, tls-exporter");
    CHECK(description(offer({"SCRAM-SHA-1-PLUS", "SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS"},
                            {{"tls-exporter"}}),
                      channel("TLSv1.3")) == "SCRAM-SHA-512-PLUS, tls-exporter");
    // A list we share nothing with: no binding ('n'), the best plain SCRAM.
    CHECK(description(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-unique"}}),
                      channel("TLSv1.3")) == "SCRAM-SHA-256");
    // The failure hint names the missing list.
    auto hinted = chosen(offer({"SCRAM-SHA-256-PLUS"}),
                         setup_with(channel("TLSv1.3"), ChannelBindingPolicy::Required));
    CHECK(hinted.failure_hint.find("XEP-0440") != std::string::npos);
    CHECK(hinted.failure_hint.find("TLS 1.3") != std::string::npos);
    auto guessed = chosen(offer({"SCRAM-SHA-256-PLUS"}), setup_with(channel("TLSv1.2")));
    CHECK(guessed.failure_hint.find("tls-unique: it did not say") != std::string::npos);
    CHECK(chosen(offer({"SCRAM-SHA-256-PLUS"}, {{"tls-exporter"}}),
                 setup_with(channel("TLSv1.3")))
              .failure_hint.empty());
}

TEST_CASE("choose: under TLS 1.3 no binding type is guessed without a XEP-0440 list",
          "[sasl][choose][plus]") {
    // Servers older than RFC 9266 (Debian 12's ejabberd 23.01) offer -PLUS under TLS 1.3 but
    // know only tls-unique, and fail every tls-exporter login.
    const auto unlisted = offer({"SCRAM-SHA-512-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256",
                                 "SCRAM-SHA-1", "PLAIN"});

    SECTION("auto: the plain mechanism with 'n', not 'y', which a server with -PLUS refuses") {
        auto c = chosen(unlisted, setup_with(channel("TLSv1.3")));
        CHECK(c.mechanism->name() == "SCRAM-SHA-256");
        CHECK(c.description == "SCRAM-SHA-256");
        CHECK(c.failure_hint.empty());
        run_against_reference(c, "SHA256", "n,,");
    }
    SECTION("auto: a stripped list is still caught when the server signs its offer (XEP-0474)") {
        auto c = chosen(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}),
                        setup_with(channel("TLSv1.3")));
        auto first = c.mechanism->initial_response();
        REQUIRE(first.ok());
        CHECK(first.value().rfind("n,,", 0) == 0);
        std::string nonce = first.value().substr(first.value().find("r=") + 2);
        auto response = c.mechanism->respond(
            "r=" + nonce + "x,s=QSXCR+Q6sek8bf92,i=4096,h=" +
            ssdp("SHA256", "SCRAM-SHA-256\x1eSCRAM-SHA-256-PLUS\x1ftls-exporter"));
        REQUIRE_FALSE(response.ok());
        require_error(response.error(), "downgrade");
    }
    SECTION("auto: with only -PLUS offered, SCRAM is skipped and the reason given") {
        CHECK(chosen(offer({"SCRAM-SHA-256-PLUS", "PLAIN"}), setup_with(channel("TLSv1.3")))
                  .description == "PLAIN");
        auto none = xmpp::sasl::choose(offer({"SCRAM-SHA-256-PLUS"}), setup_with(channel("TLSv1.3")));
        REQUIRE_FALSE(none.ok());
        CHECK(none.error().code == "no-mechanism");
        CHECK(none.error().message.find("without a list of channel-binding types (XEP-0440), and "
                                        "under TLS 1.3 none is guessed unless channel_binding = "
                                        "\"required\"") != std::string::npos);
    }
    SECTION("required: -PLUS with tls-exporter (RFC 9266 §3), with a hint for when it fails") {
        auto setup = setup_with(channel("TLSv1.3"), ChannelBindingPolicy::Required);
        auto c = chosen(unlisted, setup);
        CHECK(c.description == "SCRAM-SHA-512-PLUS, tls-exporter");
        CHECK(c.failure_hint.find("ejabberd") != std::string::npos);
        CHECK(c.failure_hint.find("tls-unique") != std::string::npos);
        run_against_reference(c, "SHA512", "p=tls-exporter,," + setup.channel.tls_exporter);
    }
    SECTION("auto with a list naming tls-exporter: -PLUS with tls-exporter") {
        auto setup = setup_with(channel("TLSv1.3"));
        auto c = chosen(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-exporter"}}), setup);
        CHECK(c.description == "SCRAM-SHA-256-PLUS, tls-exporter");
        CHECK(c.failure_hint.empty());
        run_against_reference(c, "SHA256", "p=tls-exporter,," + setup.channel.tls_exporter);
    }
    SECTION("TLS 1.2 without a list still binds with tls-unique; no -PLUS at all still says 'y'") {
        auto setup = setup_with(channel("TLSv1.2"));
        auto c = chosen(unlisted, setup);
        CHECK(c.description == "SCRAM-SHA-512-PLUS, tls-unique");
        run_against_reference(c, "SHA512", "p=tls-unique,," + setup.channel.tls_unique);
        auto y = chosen(offer({"SCRAM-SHA-256", "PLAIN"}), setup_with(channel("TLSv1.3")));
        CHECK(y.description == "SCRAM-SHA-256");
        run_against_reference(y, "SHA256", "y,,");
    }
}

TEST_CASE("choose: channel_binding = required", "[sasl][choose][plus]") {
    auto refused = [](const Offer& o, TlsChannel c) {
        auto result = xmpp::sasl::choose(o, setup_with(std::move(c), ChannelBindingPolicy::Required));
        REQUIRE_FALSE(result.ok());
        CHECK(result.error().code == "channel-binding-required");
        return result.error().message;
    };
    CHECK(refused(offer({"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}), channel("TLSv1.3")) ==
          "channel binding is required but the server offers no SCRAM-*-PLUS");
    CHECK(refused(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}), TlsChannel{}) ==
          "channel binding is required but this TLS connection has no channel-binding data");
    CHECK(refused(offer({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, {{"tls-unique"}}),
                  channel("TLSv1.3")) ==
          "channel binding is required but none of the server's channel-binding types "
          "(tls-unique) is one this connection can use (tls-exporter, tls-server-end-point)");

    // -PLUS is fine, and so is EXTERNAL, which sends no password.
    auto setup = setup_with(channel("TLSv1.3"), ChannelBindingPolicy::Required);
    CHECK(chosen(offer({"SCRAM-SHA-1-PLUS", "PLAIN"}), setup).description ==
          "SCRAM-SHA-1-PLUS, tls-exporter");
    setup.client_certificate = true;
    CHECK(chosen(offer({"EXTERNAL", "SCRAM-SHA-1"}), setup).description == "EXTERNAL");
    // PLAIN never goes out under it.
    setup.client_certificate = false;
    auto plain = xmpp::sasl::choose(offer({"PLAIN"}), setup);
    REQUIRE_FALSE(plain.ok());
    CHECK(plain.error().message.find("PLAIN cannot bind") != std::string::npos);
}

TEST_CASE("choose: EXTERNAL only with a certificate, in the configured order",
          "[sasl][choose][external]") {
    Setup setup = setup_with(TlsChannel{});
    const auto everything = offer({"EXTERNAL", "SCRAM-SHA-256", "PLAIN"});

    SECTION("offered to everyone (ejabberd), but never picked without a certificate") {
        CHECK(chosen(everything, setup).description == "SCRAM-SHA-256");
        setup.order = {"EXTERNAL", "SCRAM"};
        CHECK(chosen(everything, setup).description == "SCRAM-SHA-256");
        setup.credentials.password.clear();
        auto none = xmpp::sasl::choose(everything, setup);
        REQUIRE_FALSE(none.ok());
        CHECK(none.error().code == "no-mechanism");
        CHECK(none.error().message.find("EXTERNAL needs a client certificate") != std::string::npos);
        CHECK(none.error().message.find("no password") != std::string::npos);
    }
    SECTION("with a certificate, the default order starts with EXTERNAL; SCRAM comes next") {
        setup.client_certificate = true;
        auto first = chosen(everything, setup);
        CHECK(first.description == "EXTERNAL");
        CHECK(first.failure_hint.empty());
        CHECK(chosen(everything, setup, first.position + 1).description == "SCRAM-SHA-256");
    }
    SECTION("with a certificate and no password, nothing follows EXTERNAL") {
        setup.client_certificate = true;
        setup.credentials.password.clear();
        auto first = chosen(everything, setup);
        CHECK(first.description == "EXTERNAL");
        auto next = xmpp::sasl::choose(everything, setup, first.position + 1);
        REQUIRE_FALSE(next.ok());
        CHECK(next.error().code == "no-mechanism");
        auto not_offered = xmpp::sasl::choose(offer({"SCRAM-SHA-1"}), setup);
        REQUIRE_FALSE(not_offered.ok());
        CHECK(not_offered.error().message ==
              "no acceptable SASL mechanism: the server offered SCRAM-SHA-1; the server does not "
              "offer EXTERNAL for our client certificate; no password is set for SCRAM or PLAIN; "
              "we support EXTERNAL (with a client certificate), SCRAM-SHA-512, SCRAM-SHA-256, "
              "SCRAM-SHA-1 (and -PLUS with channel binding) and PLAIN over TLS");
    }
    SECTION("an explicit order wins") {
        setup.client_certificate = true;
        setup.order = {"scram", "EXTERNAL"};
        CHECK(chosen(everything, setup).description == "SCRAM-SHA-256");
        setup.order = {"PLAIN"};
        CHECK(chosen(everything, setup).description == "PLAIN");
        setup.order = {"EXTERNAL"};
        auto only = chosen(everything, setup);
        CHECK(only.description == "EXTERNAL");
        CHECK_FALSE(xmpp::sasl::choose(everything, setup, only.position + 1).ok());
    }
    SECTION("PLAIN only when the order allows it") {
        setup.order = {"SCRAM"};
        auto refused = xmpp::sasl::choose(offer({"PLAIN"}), setup);
        REQUIRE_FALSE(refused.ok());
        CHECK(refused.error().message.find("leaves out PLAIN") != std::string::npos);
    }
    SECTION("an unknown family is a configuration error") {
        setup.order = {"SCRAM", "DIGEST-MD5"};
        auto bad = xmpp::sasl::choose(everything, setup);
        REQUIRE_FALSE(bad.ok());
        CHECK(bad.error().code == "bad-sasl-order");
        CHECK(bad.error().message.find("DIGEST-MD5") != std::string::npos);
    }
}
