#include "testing/swtpm.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

namespace hallmark::testing {
namespace {

// PidFd returns a descriptor that becomes readable when process `pid` exits (pidfd_open), so
// that stopping a daemon we did not fork waits on an event rather than polling.
int PidFd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

}  // namespace

Swtpm::Swtpm() {
  const std::string state = dir_ / "state";
  ::mkdir(state.c_str(), 0700);
  std::vector<std::string> argv = {
      "swtpm", "socket", "--tpm2", "--tpmstate", "dir=" + state, "--server",
      "type=unixio,path=" + dir_ / "sock", "--ctrl", "type=unixio,path=" + dir_ / "sock.ctrl",
      "--flags", "not-need-init,startup-clear", "--pid", "file=" + dir_ / "pid", "--log",
      "file=" + dir_ / "log",
      // --daemon: the launcher exits once the sockets listen, which is our readiness signal.
      "--daemon"};
  pid_t launcher = ::fork();
  if (launcher < 0) {
    error_ = "fork failed";
    return;
  }
  if (launcher == 0) {
    // The daemon keeps its standard streams; give it /dev/null so no test pipe stays open.
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    std::vector<char*> args;
    for (const std::string& a : argv) {
      args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(launcher, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream log(dir_ / "log");
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    error_ = "swtpm failed to start (exit status " + std::to_string(status) + "): " + text;
    return;
  }
  std::ifstream pid_file(dir_ / "pid");
  pid_t pid = -1;
  if (!(pid_file >> pid) || pid <= 0) {
    error_ = "swtpm wrote no pid file";
    return;
  }
  pid_ = pid;
}

Swtpm::~Swtpm() { Stop(); }

bool Swtpm::Stop() {
  if (pid_ <= 0) {
    return true;
  }
  int fd = PidFd(pid_);
  ::kill(pid_, SIGTERM);
  bool stopped = true;
  if (fd >= 0) {
    pollfd p{fd, POLLIN, 0};
    // A bound for a hung emulator, not a synchronisation delay: the wait ends on exit.
    stopped = ::poll(&p, 1, 10000) == 1;
    ::close(fd);
  }
  if (!stopped) {
    ::kill(pid_, SIGKILL);
  }
  pid_ = -1;
  return stopped;
}

}  // namespace hallmark::testing
