// Result<T>: a value or an error message, for loading rules (bad data is an expected outcome,
// not an exception). A copy of policy/result.hpp's shape, because lib/scan includes nothing
// from the rest of the tree.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace codexvault::scan {

struct Error {
    std::string message;
};

template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // implicit by design
    Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // implicit by design

    [[nodiscard]] bool ok() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    // Asking a failed result for its value (or a good one for its error) is a programming error.
    T& value() &
    {
        require(true);
        return std::get<0>(state_);
    }
    const T& value() const&
    {
        require(true);
        return std::get<0>(state_);
    }
    T&& value() &&
    {
        require(true);
        return std::get<0>(std::move(state_));
    }
    [[nodiscard]] const std::string& message() const
    {
        require(false);
        return std::get<1>(state_).message;
    }

private:
    void require(bool want_value) const
    {
        if (ok() != want_value) {
            throw std::logic_error(want_value ? "Result::value() on an error" : "Result::message() on a value");
        }
    }
    std::variant<T, Error> state_;
};

}  // namespace codexvault::scan
