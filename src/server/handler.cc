#include "server/handler.h"

#include <nlohmann/json.hpp>

namespace hallmark::server {

HttpResponse JsonError(int status, std::string_view message) {
  HttpResponse res;
  res.status = status;
  res.body = nlohmann::json{{"error", std::string(message)}}.dump() + "\n";
  return res;
}

}  // namespace hallmark::server
