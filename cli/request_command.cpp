// vaultctl request: the vault makes the HTTPS call with the provider's key injected; the response
// body streams to stdout as it arrives, and the exit status says whether it was whole.
#include "cli/request_command.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "cli/request_call.hpp"

namespace codexvault::cli {
namespace {

struct RequestOptions {
    std::string provider;
    std::string method;
    std::string path;
    std::string data;  // "@FILE", "-" or the text itself; empty: no body
    bool has_data = false;
    std::vector<std::string> headers;
    bool include = false;
    std::string approval;
};

std::vector<std::uint8_t> read_stream(std::istream& in)
{
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

UniqueFd body_of(const RequestOptions& o)
{
    if (!o.has_data) {
        return {};
    }
    std::vector<std::uint8_t> bytes;
    if (o.data == "-") {
        bytes = read_stream(std::cin);
    } else if (o.data.starts_with("@")) {
        std::ifstream file(o.data.substr(1), std::ios::binary);
        if (!file) {
            throw CallError(std::nullopt, kExitLocalError, "cannot read " + o.data.substr(1));
        }
        bytes = read_stream(file);
    } else {
        bytes.assign(o.data.begin(), o.data.end());
    }
    return body_memfd(bytes);
}

HeaderList headers_of(const std::vector<std::string>& lines)
{
    HeaderList headers;
    for (const auto& line : lines) {
        const auto colon = line.find(':');
        if (colon == std::string::npos || colon == 0) {
            throw CallError(std::nullopt, kExitUsage, "a header is 'Name: value', not '" + line + "'");
        }
        std::string value = line.substr(colon + 1);
        const auto first = value.find_first_not_of(" \t");
        value = first == std::string::npos ? std::string() : value.substr(first);
        headers.emplace_back(line.substr(0, colon), value);
    }
    return headers;
}

bool write_all(int fd, const char* data, std::size_t size)
{
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

int cmd_request(const GlobalOptions& options, const RequestOptions& o)
{
    VaultClient client(options.bus);
    ProviderRequest request;
    request.provider = o.provider;
    request.method = o.method;
    request.path_and_query = o.path;
    request.headers = headers_of(o.headers);
    request.body = body_of(o);
    request.approval_id = o.approval;
    ProviderResponse response = send_request(client.bus(), request);
    if (o.include) {
        std::string head = "HTTP/1.1 " + std::to_string(response.status) + "\r\n";
        for (const auto& [name, value] : response.headers) {
            head.append(name).append(": ").append(value).append("\r\n");
        }
        head += "\r\n";
        (void)write_all(STDOUT_FILENO, head.data(), head.size());
    }
    bool stdout_ok = true;
    const ProviderOutcome outcome = relay_response(client, response, [&](std::span<const char> chunk) {
        stdout_ok = write_all(STDOUT_FILENO, chunk.data(), chunk.size());
        return stdout_ok;
    });
    if (!stdout_ok) {
        std::cerr << "vaultctl: cannot write the response to stdout: " << std::strerror(errno) << '\n';
        return kExitLocalError;
    }
    if (!outcome.complete()) {
        std::cerr << "vaultctl: the response body is truncated (" << outcome.end << ": " << outcome.reason << ")\n";
        return kExitTruncated;
    }
    if (response.status < 200 || response.status > 299) {
        if (!o.include) {
            std::cerr << "vaultctl: " << o.provider << " answered HTTP " << response.status << '\n';
        }
        return kExitHttpStatus;
    }
    return 0;
}

}  // namespace

void add_request_command(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected)
{
    auto o = std::make_shared<RequestOptions>();
    auto* request = app.add_subcommand(
        "request",
        "Make an HTTPS request to a provider through the vault (the key is injected; the body goes to stdout)");
    request->add_option("PROVIDER", o->provider, "Provider name (a [providers.NAME] of the policy)")->required();
    request->add_option("METHOD", o->method, "GET, POST, PUT, PATCH or DELETE")->required();
    request->add_option("PATH", o->path, "Path with query, e.g. /v1/models")->required();
    request->add_option_function<std::string>(
        "-d,--data",
        [o](const std::string& value) {
            o->data = value;
            o->has_data = true;
        },
        "Request body: TEXT, @FILE, or - for stdin");
    request->add_option("-H,--header", o->headers, "Request header 'Name: value' (repeatable)");
    request->add_flag("-i,--include", o->include, "Print the status line and response headers first");
    request->add_option("--approval", o->approval, "Approval id to present (after an approval-required refusal)");
    on_selected(request, selected, [&options, o] { return cmd_request(options, *o); });
}

}  // namespace codexvault::cli
