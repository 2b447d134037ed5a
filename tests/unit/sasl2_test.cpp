// XEP-0388 SASL2 with XEP-0386 Bind2, XEP-0484 FAST and XEP-0198 inside SASL2, as transcripts:
// the server's bytes in, the client's bytes and events out. The server side (SCRAM, the HT
// proofs) is computed here independently of protocol/sasl_scram.cpp.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "login_server.hpp"
#include "protocol/base/base64.hpp"
#include "protocol/stream.hpp"

using namespace xmpp;
using namespace test_server;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kUserAgent = "d4565fa7-4d72-4749-b3d3-740edbf87770";

struct Offer2 {
    std::string mechanisms = "SCRAM-SHA-1 PLAIN";
    bool bind2 = true;
    std::string bind2_inline = "urn:xmpp:carbons:2 urn:xmpp:sm:3";
    bool sm = true;
    std::string fast = "HT-SHA-256-NONE";
    bool legacy_too = true;  // also RFC 6120 <mechanisms/>, as Prosody sends
};

std::vector<std::string> words(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        auto sp = text.find(' ');
        out.emplace_back(text.substr(0, sp));
        text = sp == std::string_view::npos ? "" : text.substr(sp + 1);
    }
    return out;
}

std::string sasl2_features(const Offer2& o) {
    std::string out = "<stream:features><authentication xmlns='urn:xmpp:sasl:2'>";
    for (const auto& m : words(o.mechanisms)) out += "<mechanism>" + m + "</mechanism>";
    out += "<inline>";
    if (o.bind2) {
        out += "<bind xmlns='urn:xmpp:bind:0'><inline>";
        for (const auto& f : words(o.bind2_inline)) out += "<feature var='" + f + "'/>";
        out += "</inline></bind>";
    }
    if (o.sm) out += "<sm xmlns='urn:xmpp:sm:3'/>";
    if (!o.fast.empty()) {
        out += "<fast xmlns='urn:xmpp:fast:0'>";
        for (const auto& m : words(o.fast)) out += "<mechanism>" + m + "</mechanism>";
        out += "</fast>";
    }
    out += "</inline></authentication>";
    if (o.legacy_too) {
        out += "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms>";
    }
    return out + "</stream:features>";
}

std::string b64(std::string_view s) { return base64_encode(s); }

// The HT proofs of draft-schmaus-kitten-sasl-ht, computed with OpenSSL directly.
std::string ht_proof(std::string_view token, std::string_view who, std::string_view cb = {}) {
    return hmac(EVP_sha256(), token, std::string(who) + std::string(cb));
}

struct Session2 {
    TimePoint now = TimePoint{} + 1000s;
    ClientStream stream;
    std::string out;

    explicit Session2(StreamOptions o = options()) : stream(std::move(o)) {}

    static StreamOptions options() {
        StreamOptions o;
        o.jid = Jid::parse("user@example.org").value();
        o.password = "pencil";
        o.user_agent_id = std::string(kUserAgent);
        return o;
    }
    void feed(std::string_view bytes) { stream.receive(bytes, now); }
    std::string take() { return out = stream.take_output(); }
    std::vector<StreamEvent> events() {
        std::vector<StreamEvent> v;
        while (auto e = stream.next_event()) v.push_back(std::move(*e));
        return v;
    }
    // Direct TLS up to the features; returns the client's <authenticate/>.
    std::string offer(const Offer2& o, TlsChannel channel = {}) {
        stream.set_tls_channel(std::move(channel));
        stream.set_direct_tls();
        stream.start(now);
        take();
        feed(header(1));
        feed(sasl2_features(o));
        return take();
    }
    // The SCRAM exchange of SASL2 up to the server-final message; returns it.
    std::string scram(ScramServer& server, const std::string& authenticate) {
        REQUIRE(authenticate.starts_with("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'>"));
        auto first = base64_decode(between(authenticate, "<initial-response>", "</initial-response>")).value();
        feed("<challenge xmlns='urn:xmpp:sasl:2'>" + b64(server.first(first)) + "</challenge>");
        auto response = take();
        REQUIRE(response.starts_with("<response xmlns='urn:xmpp:sasl:2'>"));
        auto final = server.final(base64_decode(between(response, "'>", "</response>")).value());
        REQUIRE_FALSE(final.empty());
        return final;
    }
};

template <typename T>
std::vector<T> only(const std::vector<StreamEvent>& events) {
    std::vector<T> out;
    for (const auto& e : events)
        if (auto* t = std::get_if<T>(&e)) out.push_back(*t);
    return out;
}

Closed closed_event(Session2& s) {
    auto closed = only<Closed>(s.events());
    REQUIRE(closed.size() == 1);
    CHECK(s.stream.state() == StreamState::Closed);
    return closed[0];
}

const std::string kBound =
    "<authorization-identifier>user@example.org/stanzad~Xq1</authorization-identifier>"
    "<bound xmlns='urn:xmpp:bind:0'><enabled xmlns='urn:xmpp:sm:3' id='sm-9' resume='1' max='300'/></bound>";

}  // namespace

TEST_CASE("sasl2: SCRAM with Bind2, carbons and XEP-0198 inline; online at the features after <success/>") {
    Session2 s;
    ScramServer server;
    auto auth = s.offer({});
    CHECK(auth.find("<auth ") == std::string::npos);  // SASL2 wins over RFC 6120 SASL
    CHECK(auth.find("<user-agent id='" + std::string(kUserAgent) + "'><software>stanzad</software></user-agent>") !=
          std::string::npos);
    CHECK(auth.find("<bind xmlns='urn:xmpp:bind:0'><tag>stanzad</tag><enable xmlns='urn:xmpp:carbons:2'/>"
                    "<enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>") != std::string::npos);
    CHECK(auth.find("<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>") != std::string::npos);
    CHECK(auth.find("<resume") == std::string::npos);  // nothing to resume
    auto final = s.scram(server, auth);
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>\n  " + b64(final) + "\n</additional-data>" + kBound +
           "<token xmlns='urn:xmpp:fast:0' expiry='2031-01-01T00:00:00Z' token='s3cr3t'/></success>");
    auto tokens = only<FastTokenChanged>(s.events());
    REQUIRE(tokens.size() == 1);
    CHECK(tokens[0].token == sasl::FastToken{"HT-SHA-256-NONE", "s3cr3t", "2031-01-01T00:00:00Z"});
    CHECK(s.take().empty());  // §"Success": no stream restart, no bind iq, no <enable/>
    CHECK(s.stream.state() == StreamState::Negotiating);
    s.feed("<stream:features><ver xmlns='urn:xmpp:features:rosterver'/></stream:features>");
    auto online = only<Online>(s.events());
    REQUIRE(online.size() == 1);
    CHECK(online[0].jid.full() == "user@example.org/stanzad~Xq1");
    CHECK(online[0].mechanism == "SCRAM-SHA-1");
    CHECK(online[0].setup == "SASL2 + Bind2");
    CHECK(online[0].carbons);
    CHECK(online[0].stream_management);
    CHECK(online[0].roster_versioning);
    // XEP-0198 counts from the <success/>: the first stanza is our first.
    s.stream.send("<message id='m1'/>", s.now, "m1");
    s.now += 1s;
    s.stream.handle_timeout(s.now);
    CHECK(s.take() == "<message id='m1'/><r xmlns='urn:xmpp:sm:3'/>");
    s.feed("<a xmlns='urn:xmpp:sm:3' h='1'/>");
    auto acked = only<Acked>(s.events());
    REQUIRE(acked.size() == 1);
    CHECK(acked[0].tags == std::vector<std::string>{"m1"});
    auto cp = s.stream.checkpoint();
    REQUIRE(cp);
    CHECK(cp->id == "sm-9");
}

TEST_CASE("sasl2: a FAST token logs in with one message each way; the server's proof is checked") {
    auto o = Session2::options();
    o.fast_token = sasl::FastToken{"HT-SHA-256-NONE", "tok-1", "2031-01-01T00:00:00Z"};
    Session2 s(o);
    auto auth = s.offer({});
    CHECK(auth.starts_with("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'>"));
    CHECK(auth.find("<fast xmlns='urn:xmpp:fast:0'/>") != std::string::npos);
    CHECK(auth.find("request-token") == std::string::npos);
    auto initial = base64_decode(between(auth, "<initial-response>", "</initial-response>")).value();
    CHECK(initial == std::string("user") + '\0' + ht_proof("tok-1", "Initiator"));
    // XEP-0484 §"Server initiates token rotation": a new token comes with the success.
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(ht_proof("tok-1", "Responder")) +
           "</additional-data>" + kBound + "<token xmlns='urn:xmpp:fast:0' expiry='2031-02-01T00:00:00Z' token='tok-2'/>"
           "</success><stream:features/>");
    auto ev = s.events();
    auto tokens = only<FastTokenChanged>(ev);
    REQUIRE(tokens.size() == 1);
    CHECK(tokens[0].token == sasl::FastToken{"HT-SHA-256-NONE", "tok-2", "2031-02-01T00:00:00Z"});
    auto online = only<Online>(ev);
    REQUIRE(online.size() == 1);
    CHECK(online[0].mechanism == "FAST");
}

TEST_CASE("sasl2: a FAST success without the server's proof, or a wrong one, ends the login") {
    for (std::string data : {std::string(), b64(ht_proof("other", "Responder")), b64(ht_proof("tok-1", "Initiator"))}) {
        auto o = Session2::options();
        o.fast_token = sasl::FastToken{"HT-SHA-256-NONE", "tok-1", ""};
        Session2 s(o);
        s.offer({});
        s.feed("<success xmlns='urn:xmpp:sasl:2'>" +
               (data.empty() ? std::string() : "<additional-data>" + data + "</additional-data>") + kBound + "</success>");
        auto closed = closed_event(s);
        CHECK(closed.kind == Closed::Kind::AuthFailed);
        CHECK(closed.reason.find("FAST proof") != std::string::npos);
    }
}

TEST_CASE("sasl2: a refused FAST token is forgotten and the password used on the same stream") {
    auto o = Session2::options();
    o.fast_token = sasl::FastToken{"HT-SHA-256-NONE", "tok-old", ""};
    Session2 s(o);
    ScramServer server;
    s.offer({});
    s.feed("<failure xmlns='urn:xmpp:sasl:2'><credentials-expired xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
           "<text>Token expired</text></failure>");
    auto tokens = only<FastTokenChanged>(s.events());
    REQUIRE(tokens.size() == 1);
    CHECK_FALSE(tokens[0].token);
    CHECK(tokens[0].refused == "credentials-expired (Token expired)");
    auto auth = s.take();
    CHECK(auth.find("<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>") != std::string::npos);
    auto final = s.scram(server, auth);
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(final) + "</additional-data>" + kBound +
           "<token xmlns='urn:xmpp:fast:0' expiry='2031-01-01T00:00:00Z' token='tok-new'/></success><stream:features/>");
    auto ev = s.events();
    tokens = only<FastTokenChanged>(ev);
    REQUIRE(tokens.size() == 1);
    CHECK(tokens[0].token->secret == "tok-new");
    REQUIRE(only<Online>(ev).size() == 1);
    CHECK(only<Online>(ev)[0].mechanism == "SCRAM-SHA-1");
}

TEST_CASE("sasl2: a server that refuses the password after refusing the token is tried again without it") {
    // Prosody's mod_sasl2 of 2023 refuses any second mechanism on a stream (invalid-mechanism).
    auto o = Session2::options();
    o.fast_token = sasl::FastToken{"HT-SHA-256-NONE", "tok-old", ""};
    Session2 s(o);
    s.offer({});
    s.feed("<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>");
    s.take();
    s.feed("<failure xmlns='urn:xmpp:sasl:2'><invalid-mechanism xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>");
    auto ev = s.events();
    auto closed = only<Closed>(ev);
    REQUIRE(closed.size() == 1);
    CHECK(closed[0].retry());
    CHECK(closed[0].reason == "SCRAM-SHA-1: invalid-mechanism after the FAST token was refused (not-authorized); "
                              "trying again without the token");
}

TEST_CASE("sasl2: FAST binds to the channel when it can; channel_binding = required never uses -NONE") {
    TlsChannel tls12{"TLSv1.2", "", "ENDPOINTHASH", "FINISHED-12"};
    TlsChannel tls13{"TLSv1.3", std::string(32, 'x'), "ENDPOINTHASH", ""};
    std::vector<std::string> all{"HT-SHA-256-NONE", "HT-SHA-256-UNIQ", "HT-SHA-256-ENDP", "HT-SHA-256-EXPR"};
    auto pick = [](const std::vector<std::string>& offered, const TlsChannel& c, ChannelBindingPolicy p) {
        auto ht = sasl::choose_ht(offered, c, p);
        return ht ? ht->mechanism : std::string("none");
    };
    CHECK(pick(all, tls13, ChannelBindingPolicy::Auto) == "HT-SHA-256-EXPR");
    CHECK(pick(all, tls12, ChannelBindingPolicy::Auto) == "HT-SHA-256-UNIQ");
    CHECK(pick({"HT-SHA-256-NONE", "HT-SHA-256-UNIQ"}, tls13, ChannelBindingPolicy::Auto) == "HT-SHA-256-NONE");
    CHECK(pick({"HT-SHA-256-NONE", "HT-SHA-256-UNIQ"}, tls13, ChannelBindingPolicy::Required) == "none");
    CHECK(pick({"HT-SHA-256-NONE", "HT-SHA-256-ENDP"}, tls13, ChannelBindingPolicy::Required) == "HT-SHA-256-ENDP");
    CHECK(pick({"HT-SHA-512-NONE"}, tls13, ChannelBindingPolicy::Auto) == "none");

    // A token for -UNIQ carries tls-unique in both proofs.
    auto o = Session2::options();
    o.fast_token = sasl::FastToken{"HT-SHA-256-UNIQ", "tok-u", ""};
    Session2 s(o);
    Offer2 offer;
    offer.fast = "HT-SHA-256-NONE HT-SHA-256-UNIQ";
    auto auth = s.offer(offer, tls12);
    CHECK(auth.starts_with("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-UNIQ'>"));
    auto initial = base64_decode(between(auth, "<initial-response>", "</initial-response>")).value();
    CHECK(initial == std::string("user") + '\0' + ht_proof("tok-u", "Initiator", "FINISHED-12"));
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(ht_proof("tok-u", "Responder", "FINISHED-12")) +
           "</additional-data>" + kBound + "</success><stream:features/>");
    auto online = only<Online>(s.events());
    REQUIRE(online.size() == 1);
    CHECK(online[0].mechanism == "FAST, tls-unique");

    // The same token on a TLS 1.3 connection has no tls-unique: the password, and a new token.
    Session2 t(o);
    auth = t.offer(offer, tls13);
    CHECK(auth.starts_with("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'>"));
    CHECK(auth.find("mechanism='HT-SHA-256-NONE'/>") != std::string::npos);
}

TEST_CASE("sasl2: without a user-agent id no token is asked for or used") {
    auto o = Session2::options();
    o.user_agent_id.clear();
    o.fast_token = sasl::FastToken{"HT-SHA-256-NONE", "tok-1", ""};
    Session2 s(o);
    auto auth = s.offer({});
    CHECK(auth.starts_with("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'>"));
    CHECK(auth.find("<user-agent><software>stanzad</software></user-agent>") != std::string::npos);
    CHECK(auth.find("fast") == std::string::npos);
}

TEST_CASE("sasl2: <continue/> with tasks we cannot do aborts with a reason a person can act on") {
    Session2 s;
    ScramServer server;
    auto final = s.scram(server, s.offer({}));
    s.feed("<continue xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(final) +
           "</additional-data><tasks><task>TOTP-EXAMPLE</task></tasks><text>This account requires 2FA</text></continue>");
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::AuthFailed);
    CHECK(closed.reason.find("TOTP-EXAMPLE: This account requires 2FA") != std::string::npos);
    CHECK(s.take() == "<abort xmlns='urn:xmpp:sasl:2'/></stream:stream>");
}

TEST_CASE("sasl2: a failure says the condition and text and is not retried; temporary ones are") {
    for (auto [condition, retry] : {std::pair{"not-authorized", false}, {"temporary-auth-failure", true}}) {
        Session2 s;
        s.offer({});
        s.feed(std::string("<failure xmlns='urn:xmpp:sasl:2'><") + condition +
               " xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><text>Nope</text></failure>");
        auto closed = closed_event(s);
        CHECK(closed.retry() == retry);
        CHECK(closed.reason == std::string("SCRAM-SHA-1: ") + condition + " (Nope)");
    }
}

TEST_CASE("sasl2: an authorization identifier of another account is final") {
    Session2 s;
    ScramServer server;
    auto final = s.scram(server, s.offer({}));
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(final) +
           "</additional-data><authorization-identifier>mallory@example.org/x</authorization-identifier></success>");
    auto closed = closed_event(s);
    CHECK(closed.kind == Closed::Kind::Fatal);
    CHECK(closed.reason.find("logged us in as mallory@example.org") != std::string::npos);
}

TEST_CASE("sasl2: without Bind2 the legacy bind and enable follow the features, without a restart") {
    Session2 s;
    ScramServer server;
    Offer2 offer;
    offer.bind2 = false;
    auto auth = s.offer(offer);
    CHECK(auth.find("urn:xmpp:bind:0") == std::string::npos);
    auto final = s.scram(server, auth);
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(final) +
           "</additional-data><authorization-identifier>user@example.org</authorization-identifier></success>");
    CHECK(s.take().empty());
    s.feed("<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>");
    CHECK(s.take().find("<resource>stanzad</resource>") != std::string::npos);
    s.feed("<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>user@example.org/stanzad</jid>"
           "</bind></iq>");
    CHECK(s.take() == "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    s.feed("<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>");
    auto online = only<Online>(s.events());
    REQUIRE(online.size() == 1);
    CHECK(online[0].setup == "SASL2");
    CHECK_FALSE(online[0].carbons);  // the owner enables them with an iq
}

TEST_CASE("sasl2: Bind2 without XEP-0198 inline enables it the legacy way after the features") {
    Session2 s;
    ScramServer server;
    Offer2 offer;
    offer.bind2_inline = "urn:xmpp:carbons:2";  // Prosody 0.12 without mod_sasl2_sm
    offer.sm = false;
    auto auth = s.offer(offer);
    CHECK(auth.find("<enable xmlns='urn:xmpp:sm:3'") == std::string::npos);
    auto final = s.scram(server, auth);
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(final) + "</additional-data>"
           "<authorization-identifier>user@example.org/stanzad~1</authorization-identifier><bound xmlns='urn:xmpp:bind:0'/>"
           "</success><stream:features><sm xmlns='urn:xmpp:sm:3'/></stream:features>");
    CHECK(s.take() == "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    s.feed("<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>");
    auto online = only<Online>(s.events());
    REQUIRE(online.size() == 1);
    CHECK(online[0].stream_management);
    CHECK(online[0].jid.full() == "user@example.org/stanzad~1");
}

TEST_CASE("sasl2: a session is resumed inside SASL2; stanzas before the features are kept") {
    // A first login that enables XEP-0198 inline and loses its connection with two unacked.
    Session2 first;
    ScramServer server;
    auto final = first.scram(server, first.offer({}));
    first.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(final) + "</additional-data>" + kBound +
               "</success><stream:features/>");
    first.events();
    first.stream.send("<message id='m1'/>", first.now, "m1");
    first.stream.send("<message id='m2'/>", first.now, "m2");
    first.feed("<message from='b@c/d'><body>in</body></message>");
    first.events();
    first.stream.transport_closed("reset");
    auto session = first.stream.take_resumable();
    REQUIRE(session);

    auto o = Session2::options();
    o.resume = std::move(session);
    Session2 s(std::move(o));
    auto auth = s.offer({});
    CHECK(auth.find("<resume xmlns='urn:xmpp:sm:3' h='1' previd='sm-9'/>") != std::string::npos);
    CHECK(auth.find("<bind xmlns='urn:xmpp:bind:0'>") != std::string::npos);  // used only if resumption fails
    auto final2 = s.scram(server, auth);
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(final2) + "</additional-data>"
           "<authorization-identifier>user@example.org</authorization-identifier>"
           "<resumed xmlns='urn:xmpp:sm:3' h='1' previd='sm-9'/></success>");
    CHECK(s.take() == "<message id='m2'/>");  // what the server did not get goes again
    // Prosody resends the stanzas it queued before it sends the features.
    s.feed("<message from='b@c/d'><body>queued</body></message><stream:features/>");
    auto ev = s.events();
    REQUIRE(ev.size() == 3);
    CHECK(std::get<Acked>(ev[0]).tags == std::vector<std::string>{"m1"});
    CHECK(std::get<Online>(ev[1]).resumed);
    CHECK(std::get<Online>(ev[1]).jid.full() == "user@example.org/stanzad~Xq1");
    CHECK(std::holds_alternative<StanzaReceived>(ev[2]));
    CHECK(s.stream.state() == StreamState::Online);  // the late features were no violation
    s.feed("<r xmlns='urn:xmpp:sm:3'/>");
    CHECK(s.take().find("<a xmlns='urn:xmpp:sm:3' h='2'/>") != std::string::npos);
}

TEST_CASE("sasl2: a refused inline resumption binds anew in the same round trip") {
    SmSession previous{"sm-9", "", Jid::parse("user@example.org/stanzad~Xq1").value(), SmQueue(), 0, false};
    previous.queue.push("<message id='m1'/>", "m1");
    auto o = Session2::options();
    o.resume = std::move(previous);
    Session2 s(std::move(o));
    ScramServer server;
    auto final = s.scram(server, s.offer({}));
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(final) + "</additional-data>"
           "<authorization-identifier>user@example.org/stanzad~New</authorization-identifier>"
           "<failed xmlns='urn:xmpp:sm:3' h='1'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"
           "<bound xmlns='urn:xmpp:bind:0'><enabled xmlns='urn:xmpp:sm:3' id='sm-10' resume='1'/></bound>"
           "</success><stream:features/>");
    auto ev = s.events();
    REQUIRE(only<Acked>(ev).size() == 1);
    CHECK(only<Acked>(ev)[0].tags == std::vector<std::string>{"m1"});
    auto online = only<Online>(ev);
    REQUIRE(online.size() == 1);
    CHECK_FALSE(online[0].resumed);
    CHECK(online[0].resume_failure == "item-not-found");
    CHECK(online[0].jid.full() == "user@example.org/stanzad~New");
    CHECK(s.stream.checkpoint()->id == "sm-10");
}

TEST_CASE("sasl2: a session the server cannot resume inline is resumed the legacy way, without Bind2") {
    SmSession previous{"sm-9", "", Jid::parse("user@example.org/stanzad~Xq1").value(), SmQueue(), 0, false};
    auto o = Session2::options();
    o.resume = std::move(previous);
    Session2 s(std::move(o));
    ScramServer server;
    Offer2 offer;
    offer.sm = false;
    auto auth = s.offer(offer);
    CHECK(auth.find("<bind") == std::string::npos);  // a new binding would end the old session
    CHECK(auth.find("<resume") == std::string::npos);
    auto final = s.scram(server, auth);
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(final) + "</additional-data>"
           "<authorization-identifier>user@example.org</authorization-identifier></success>"
           "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>");
    CHECK(s.take() == "<resume xmlns='urn:xmpp:sm:3' h='0' previd='sm-9'/>");
}

TEST_CASE("sasl2: a failed Bind2 ends the login with the server's reason") {
    Session2 s;
    ScramServer server;
    auto final = s.scram(server, s.offer({}));
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(final) + "</additional-data>"
           "<authorization-identifier>user@example.org</authorization-identifier><failed xmlns='urn:xmpp:bind:0'>"
           "<error type='cancel'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></failed>"
           "</success>");
    auto closed = closed_event(s);
    CHECK(closed.retry());
    CHECK(closed.reason == "resource binding failed: resource-constraint");
}

TEST_CASE("sasl2: sasl2 = false keeps RFC 6120 SASL even when SASL2 is offered") {
    auto o = Session2::options();
    o.sasl2 = false;
    Session2 s(o);
    auto auth = s.offer({});
    CHECK(auth.starts_with("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"));
}

TEST_CASE("sasl2: the wire trace hides the SASL data, the proofs and the token") {
    auto o = Session2::options();
    o.fast_token = sasl::FastToken{"HT-SHA-256-NONE", "tok-1", ""};
    Session2 s(o);
    std::string trace;
    s.stream.set_wire_trace([&](bool, std::string_view xml) { trace += std::string(xml) + "\n"; });
    auto auth = s.offer({});
    s.feed("<success xmlns='urn:xmpp:sasl:2'><additional-data>" + b64(ht_proof("tok-1", "Responder")) +
           "</additional-data>" + kBound + "<token xmlns='urn:xmpp:fast:0' expiry='2031-02-01T00:00:00Z' token='tok-2'/>"
           "</success><stream:features/>");
    REQUIRE(only<Online>(s.events()).size() == 1);
    CHECK(trace.find("<initial-response>[redacted]</initial-response>") != std::string::npos);
    CHECK(trace.find(between(auth, "<initial-response>", "</initial-response>")) == std::string::npos);
    CHECK(trace.find("tok-2") == std::string::npos);
    CHECK(trace.find(b64(ht_proof("tok-1", "Responder"))) == std::string::npos);
    CHECK(trace.find("<success xmlns='urn:xmpp:sasl:2'>[redacted]</success>") != std::string::npos);
}
