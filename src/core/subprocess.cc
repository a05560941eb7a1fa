#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace hallmark {
namespace {

class Pipe {
 public:
  Pipe() {
    if (::pipe2(fds_, O_CLOEXEC) != 0) {
      fds_[0] = fds_[1] = -1;
    }
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    CloseRead();
    CloseWrite();
  }
  bool ok() const { return fds_[0] >= 0; }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  void CloseRead() { Close(0); }
  void CloseWrite() { Close(1); }

 private:
  void Close(int i) {
    if (fds_[i] >= 0) {
      ::close(fds_[i]);
      fds_[i] = -1;
    }
  }
  int fds_[2];
};

}  // namespace

Result<ProcessResult> RunProcess(const std::vector<std::string>& argv, const std::string& input) {
  if (argv.empty()) {
    return Error(Code::kInvalidArgument, "no program to run");
  }
  Pipe in;
  Pipe out;
  Pipe err;
  if (!in.ok() || !out.ok() || !err.ok()) {
    return Error(Code::kUnavailable, std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in.read_end(), 0);
  posix_spawn_file_actions_adddup2(&actions, out.write_end(), 1);
  posix_spawn_file_actions_adddup2(&actions, err.write_end(), 2);
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return Error(Code::kNotFound, "cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  in.CloseRead();
  out.CloseWrite();
  err.CloseWrite();

  // Feed stdin and drain stdout/stderr together so neither side blocks on a full pipe.
  ProcessResult result;
  size_t written = 0;
  if (input.empty()) {
    in.CloseWrite();
  }
  // A child that exits without reading its input must not kill us with SIGPIPE.
  struct sigaction ignore {};
  struct sigaction old {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old);
  bool out_open = true;
  bool err_open = true;
  while (out_open || err_open) {
    pollfd fds[3];
    nfds_t n = 0;
    int in_idx = -1;
    if (in.write_end() >= 0) {
      in_idx = static_cast<int>(n);
      fds[n++] = {in.write_end(), POLLOUT, 0};
    }
    int out_idx = out_open ? static_cast<int>(n) : -1;
    if (out_open) {
      fds[n++] = {out.read_end(), POLLIN, 0};
    }
    int err_idx = err_open ? static_cast<int>(n) : -1;
    if (err_open) {
      fds[n++] = {err.read_end(), POLLIN, 0};
    }
    if (::poll(fds, n, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    if (in_idx >= 0 && fds[in_idx].revents != 0) {
      ssize_t w = ::write(in.write_end(), input.data() + written, input.size() - written);
      if (w < 0 && errno != EINTR && errno != EAGAIN) {
        in.CloseWrite();
      } else if (w > 0) {
        written += static_cast<size_t>(w);
        if (written == input.size()) {
          in.CloseWrite();
        }
      }
    }
    char buf[16384];
    auto drain = [&](int idx, int fd, std::string& sink, bool& open) {
      if (idx < 0 || fds[idx].revents == 0) {
        return;
      }
      ssize_t r = ::read(fd, buf, sizeof(buf));
      if (r > 0) {
        sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        open = false;
      }
    };
    drain(out_idx, out.read_end(), result.out, out_open);
    drain(err_idx, err.read_end(), result.err, err_open);
  }
  in.CloseWrite();
  sigaction(SIGPIPE, &old, nullptr);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace hallmark
