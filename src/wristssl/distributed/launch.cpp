#include "wristssl/distributed/launch.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <stdexcept>
#include <thread>

#include "wristssl/util/stop_signal.h"
#include "wristssl/util/threads.h"

namespace wristssl::distributed {
namespace {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("launch: cannot open a socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("launch: cannot find a free port");
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

int to_int(const std::string& flag, const std::string& v, int lo, int hi) {
  try {
    size_t used = 0;
    const int x = std::stoi(v, &used);
    if (used == v.size() && x >= lo && x <= hi) return x;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument(flag + " '" + v + "' must be an integer in " + std::to_string(lo) +
                              "-" + std::to_string(hi));
}

struct Rank {
  pid_t pid = -1;
  int fd = -1;          // its stdout and stderr
  std::string partial;  // a line not yet ended
  std::deque<std::string> tail;
  bool running = true;
  int status = 0;
};

void emit(int r, Rank& rank, const std::string& line, int keep) {
  std::fprintf(stderr, "[rank %d] %s\n", r, line.c_str());
  rank.tail.push_back(line);
  while (static_cast<int>(rank.tail.size()) > keep) rank.tail.pop_front();
}

void drain(int r, Rank& rank, int keep) {
  char buf[4096];
  while (rank.fd >= 0) {
    const ssize_t n = ::read(rank.fd, buf, sizeof(buf));
    if (n > 0) {
      rank.partial.append(buf, static_cast<size_t>(n));
      size_t nl;
      while ((nl = rank.partial.find_first_of("\n\r")) != std::string::npos) {
        std::string line = rank.partial.substr(0, nl);
        rank.partial.erase(0, nl + 1);
        if (!line.empty()) emit(r, rank, line, keep);
      }
      continue;
    }
    if (n == 0) {  // end of its output
      if (!rank.partial.empty()) emit(r, rank, rank.partial, keep);
      rank.partial.clear();
      ::close(rank.fd);
      rank.fd = -1;
    }
    return;  // EAGAIN: nothing more for now
  }
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "ended";
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

LaunchOptions parse_launch_args(const std::vector<std::string>& args) {
  LaunchOptions o;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    auto value = [&](const std::string& flag) {
      if (i + 1 >= args.size()) throw std::invalid_argument(flag + " needs a value");
      return args[++i];
    };
    if (a == "--nproc" || a == "--nproc-per-node" || a == "--nproc_per_node") {
      o.nproc = to_int("--nproc", value(a), 1, 1024);
    } else if (a == "--master-addr") {
      o.master_addr = value(a);
    } else if (a == "--master-port") {
      o.master_port = to_int("--master-port", value(a), 1, 65535);
    } else if (a == "--threads") {
      o.threads = to_int("--threads", value(a), 0, 4096);
    } else if (a == "--grace") {
      o.grace_s = to_int("--grace", value(a), 0, 3600);
    } else if (a == "-h" || a == "--help") {
      throw std::invalid_argument(
          "usage: wristssl launch [--nproc N] [--master-port P] [--master-addr A] [--threads T] -- "
          "COMMAND...");
    } else {
      throw std::invalid_argument("launch: unknown option '" + a + "' (the command goes after --)");
    }
  }
  o.command.assign(args.begin() + static_cast<std::ptrdiff_t>(std::min(i, args.size())),
                   args.end());
  if (o.command.empty())
    throw std::invalid_argument("launch: no command (wristssl launch --nproc N -- COMMAND...)");
  return o;
}

int run_launch(const LaunchOptions& o) {
  if (o.nproc < 1) throw std::invalid_argument("--nproc must be >= 1");
  const int port = o.master_port > 0 ? o.master_port : free_port();
  const int threads = o.threads > 0 ? o.threads : std::max(1, util::available_cores() / o.nproc);
  std::fprintf(stderr, "launch: %d processes, %d thread(s) each, rendezvous %s:%d\n", o.nproc,
               threads, o.master_addr.c_str(), port);
  util::install_stop_handlers();
  util::take_stop_signal();  // only signals from now on are passed on

  std::vector<Rank> ranks(static_cast<size_t>(o.nproc));
  for (int r = 0; r < o.nproc; ++r) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("launch: cannot create a pipe");
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("launch: cannot fork");
    if (pid == 0) {
      ::close(fds[0]);
      ::dup2(fds[1], STDOUT_FILENO);
      ::dup2(fds[1], STDERR_FILENO);
      ::close(fds[1]);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      ::setenv("MASTER_ADDR", o.master_addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
      std::vector<char*> argv;
      for (const std::string& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "launch: cannot run %s: %s\n", argv[0], std::strerror(errno));
      ::_exit(127);
    }
    ::close(fds[1]);
    ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    ranks[static_cast<size_t>(r)].pid = pid;
    ranks[static_cast<size_t>(r)].fd = fds[0];
    std::fprintf(stderr, "launch: rank %d pid %d\n", r, static_cast<int>(pid));
  }

  int result = 0, forwarded = 0, running = o.nproc;
  bool stopping = false;
  auto stop_all = [&](int sig) {
    for (Rank& k : ranks)
      if (k.running) ::kill(k.pid, sig);
  };
  std::chrono::steady_clock::time_point stop_deadline{};
  while (running > 0) {
    std::vector<pollfd> fds;
    for (const Rank& k : ranks)
      if (k.fd >= 0) fds.push_back({k.fd, POLLIN, 0});
    if (!fds.empty()) {
      ::poll(fds.data(), fds.size(), 200);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    for (int r = 0; r < o.nproc; ++r) drain(r, ranks[static_cast<size_t>(r)], o.tail_lines);
    const int sig = util::take_stop_signal();
    if (sig != 0 && forwarded < 2) {  // passed on; a second signal is passed on too, a third kills
      std::fprintf(stderr, "launch: signal %d: passing it on to every rank\n", sig);
      stop_all(++forwarded == 1 ? sig : SIGKILL);
      stopping = true;
      stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.grace_s);
    }
    for (int r = 0; r < o.nproc; ++r) {
      Rank& k = ranks[static_cast<size_t>(r)];
      if (!k.running) continue;
      int status = 0;
      if (::waitpid(k.pid, &status, WNOHANG) != k.pid) continue;
      k.running = false;
      k.status = status;
      --running;
      drain(r, k, o.tail_lines);
      const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      if (failed && result == 0 && !stopping) {
        result = exit_code(status);
        std::fprintf(stderr,
                     "launch: rank %d (pid %d) %s; stopping the other ranks. Its last lines:\n", r,
                     static_cast<int>(k.pid), describe(status).c_str());
        for (const std::string& line : k.tail) std::fprintf(stderr, "  | %s\n", line.c_str());
        stop_all(SIGTERM);
        stopping = true;
        stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.grace_s);
      } else if (failed && result == 0) {
        result = exit_code(status);
      }
    }
    if (stopping && running > 0 && std::chrono::steady_clock::now() > stop_deadline) {
      std::fprintf(stderr, "launch: %d rank(s) still running after %d s: SIGKILL\n", running,
                   o.grace_s);
      stop_all(SIGKILL);
      stop_deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
    }
  }
  for (int r = 0; r < o.nproc; ++r) drain(r, ranks[static_cast<size_t>(r)], o.tail_lines);
  std::fprintf(
      stderr, "launch: %s\n",
      result == 0 ? "every rank finished" : ("failed, status " + std::to_string(result)).c_str());
  return result;
}

}  // namespace wristssl::distributed
