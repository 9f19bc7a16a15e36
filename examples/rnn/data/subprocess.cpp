#include "subprocess.h"

#include <c10/util/Exception.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace mantra::examples::detail {

ProcessResult run_capture(const std::vector<std::string>& argv) {
  TORCH_CHECK(!argv.empty(), "run_capture: empty command");
  int out_pipe[2], err_pipe[2];
  TORCH_CHECK(pipe2(out_pipe, O_CLOEXEC) == 0, "run_capture: pipe: ", std::strerror(errno));
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    close(out_pipe[0]);
    close(out_pipe[1]);
    TORCH_CHECK(false, "run_capture: pipe: ", std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  ProcessResult r;
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    r.exit_code = 127;
    r.error = "cannot start " + argv[0] + ": " + std::strerror(rc);
    return r;
  }
  // Drain both pipes together so neither can fill up and block the child.
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (auto& p : fds) {
      if (p.fd < 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = read(p.fd, buf, sizeof(buf));
      if (n > 0) {
        if (p.fd == out_pipe[0]) {
          r.out.insert(r.out.end(), buf, buf + n);
        } else if (r.error.size() < 4096) {
          r.error.append(buf, static_cast<size_t>(n));
        }
      } else if (n == 0 || errno != EINTR) {
        close(p.fd);
        p.fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) close(p.fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  if (r.error.size() > 4096) r.error.resize(4096);
  return r;
}

}  // namespace mantra::examples::detail
