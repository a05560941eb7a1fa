#include "factory/internal/device_link.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace hallmark::factory::internal {
namespace {

Code CodeFromName(const std::string& name) {
  for (Code c :
       {Code::kInvalidArgument, Code::kNotFound, Code::kAlreadyExists, Code::kUnauthenticated,
        Code::kPermissionDenied, Code::kFailedPrecondition, Code::kOutOfRange,
        Code::kResourceExhausted, Code::kUnavailable, Code::kDataLoss}) {
    if (CodeName(c) == name) {
      return c;
    }
  }
  return Code::kInternal;
}

}  // namespace

Result<std::unique_ptr<DeviceLink>> DeviceLink::Spawn(const std::vector<std::string>& argv) {
  int in[2];
  int out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) {
    return Error(Code::kUnavailable, std::string("pipe: ") + std::strerror(errno));
  }
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return Error(Code::kUnavailable, std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  if (rc != 0) {
    ::close(in[1]);
    ::close(out[0]);
    return Error(Code::kUnavailable,
                 "cannot start the device agent " + argv[0] + ": " + std::strerror(rc));
  }
  return std::unique_ptr<DeviceLink>(new DeviceLink(pid, in[1], out[0]));
}

DeviceLink::~DeviceLink() {
  ::close(to_device_);
  ::close(from_device_);
  // End of input ends the agent; a hung one is killed after a bound.
  pollfd p{static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)), POLLIN, 0};
  if (p.fd >= 0) {
    if (::poll(&p, 1, 10000) != 1) {
      ::kill(pid_, SIGKILL);
    }
    ::close(p.fd);
  }
  int status = 0;
  ::waitpid(pid_, &status, 0);
}

Result<std::string> DeviceLink::ReadLine(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (size_t nl = pending_.find('\n'); nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return Error(Code::kUnavailable, "the device did not answer in time");
    }
    pollfd p{from_device_, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) {
      continue;
    }
    if (rc <= 0) {
      return Error(Code::kUnavailable, "the device did not answer in time");
    }
    char buf[8192];
    ssize_t n = ::read(from_device_, buf, sizeof(buf));
    if (n <= 0) {
      return Error(Code::kUnavailable, "the device stopped (no answer)");
    }
    pending_.append(buf, static_cast<size_t>(n));
    if (pending_.size() > (1 << 20)) {
      return Error(Code::kInvalidArgument, "the device sent more than 1 MiB without a newline");
    }
  }
}

Result<nlohmann::json> DeviceLink::Call(const nlohmann::json& request,
                                        std::chrono::milliseconds timeout) {
  std::string line = request.dump() + "\n";
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(to_device_, p, left);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return Error(Code::kUnavailable, "the device stopped (cannot send the request)");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  auto reply_line = ReadLine(timeout);
  if (!reply_line) {
    return reply_line.error();
  }
  auto reply = nlohmann::json::parse(*reply_line, nullptr, /*allow_exceptions=*/false);
  if (reply.is_discarded() || !reply.is_object()) {
    return Error(Code::kInvalidArgument, "the device sent something other than a JSON object");
  }
  if (!reply.value("ok", false)) {
    return Error(CodeFromName(reply.value("code", std::string())),
                 reply.value("error", std::string("the device reported a failure")));
  }
  return reply;
}

}  // namespace hallmark::factory::internal
