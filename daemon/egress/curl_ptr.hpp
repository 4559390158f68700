// Owning pointers for libcurl objects; a header list is wiped before it is freed because one of
// its entries carries the injected credential.
#pragma once

#include <curl/curl.h>

#include <cstring>
#include <memory>

namespace codexvault::egress {

struct EasyCleanup {
    void operator()(CURL* easy) const noexcept { curl_easy_cleanup(easy); }
};
struct MultiCleanup {
    void operator()(CURLM* multi) const noexcept { curl_multi_cleanup(multi); }
};
struct WipingSlistFree {
    void operator()(curl_slist* list) const noexcept
    {
        for (curl_slist* item = list; item != nullptr; item = item->next) {
            if (item->data != nullptr) {
                explicit_bzero(item->data, std::strlen(item->data));
            }
        }
        curl_slist_free_all(list);
    }
};

using EasyPtr = std::unique_ptr<CURL, EasyCleanup>;
using MultiPtr = std::unique_ptr<CURLM, MultiCleanup>;
using SlistPtr = std::unique_ptr<curl_slist, WipingSlistFree>;

}  // namespace codexvault::egress
