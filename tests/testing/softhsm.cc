#include "testing/softhsm.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "core/subprocess.h"

namespace hallmark::testing {

SoftHsm::SoftHsm() {
  const std::string tokens = dir_ / "tokens";
  ::mkdir(tokens.c_str(), 0700);
  std::ofstream(dir_ / "softhsm2.conf")
      << "directories.tokendir = " << tokens << "\nobjectstore.backend = file\nlog.level = ERROR\n";
  if (const char* old = ::getenv("SOFTHSM2_CONF"); old != nullptr) {
    previous_conf_ = old;
  }
  ::setenv("SOFTHSM2_CONF", (dir_ / "softhsm2.conf").c_str(), 1);
}

SoftHsm::~SoftHsm() {
  if (previous_conf_.has_value()) {
    ::setenv("SOFTHSM2_CONF", previous_conf_->c_str(), 1);
  } else {
    ::unsetenv("SOFTHSM2_CONF");
  }
}

std::string SoftHsm::Module() {
  for (const char* path :
       {"/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
        "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"}) {
    if (::access(path, R_OK) == 0) {
      return path;
    }
  }
  return "";
}

::testing::AssertionResult SoftHsm::InitToken(const std::string& label, const std::string& pin) {
  auto r = RunProcess({"softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin",
                       kSoPin, "--pin", pin});
  if (!r) {
    return ::testing::AssertionFailure() << "softhsm2-util: " << r.error();
  }
  if (r->exit_code != 0) {
    return ::testing::AssertionFailure()
           << "softhsm2-util exited " << r->exit_code << ": " << r->out << r->err;
  }
  return ::testing::AssertionSuccess();
}

std::string SoftHsm::Spec(const std::string& token, const std::string& label) {
  std::string spec = "pkcs11:module=" + Module() + ";token=" + token;
  if (!label.empty()) {
    spec += ";label=" + label;
  }
  return spec;
}

}  // namespace hallmark::testing
