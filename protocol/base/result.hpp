#pragma once
// Errors as values (no exceptions on the data path). A Result<T> holds either a T or an
// Error with a stable machine-readable code and a human message.
#include <string>
#include <utility>
#include <variant>

namespace xmpp {

struct Error {
    std::string code;     // stable, machine-readable: "bad-xml", "sasl-failure", ...
    std::string message;  // for people: what went wrong, and where
};

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    explicit operator bool() const { return v_.index() == 0; }
    bool ok() const { return v_.index() == 0; }
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
struct Ok {};
using Status = Result<Ok>;

inline Error make_error(std::string code, std::string message) {
    return Error{std::move(code), std::move(message)};
}

}  // namespace xmpp
