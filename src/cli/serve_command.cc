// `hallmark serve`: the mutual-TLS server.
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>
#include <thread>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/enroll_config.h"
#include "core/clock.h"
#include "core/file.h"
#include "registry/registrar_key.h"
#include "registry/serving_directory.h"
#include "registry/tree_head.h"
#include "server/config.h"
#include "server/server.h"

namespace hallmark::cli {
namespace {

using nlohmann::json;

std::string EndpointText(const server::Endpoint& e) {
  return (e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host) + ":" +
         std::to_string(e.port);
}

// PersistingDirectory keeps the newest verified tree head in a file (write-then-rename), so a
// restart refuses a registry rolled back to an older copy (docs/adr/0004).
class PersistingDirectory : public registry::Directory {
 public:
  PersistingDirectory(std::unique_ptr<registry::ServingDirectory> inner, std::string head_file)
      : inner_(std::move(inner)), head_file_(std::move(head_file)) {}

  Result<registry::DeviceRecord> Lookup(std::string_view device_id) override {
    return inner_->Lookup(device_id);
  }

  Result<registry::VerifiedBatch> LookupBatch(std::string_view batch_id) override {
    return inner_->LookupBatch(batch_id);
  }

  Result<std::vector<std::string>> Refresh() override {
    auto changed = inner_->Refresh();
    if (changed && !changed->empty()) {
      if (auto s = Persist(); !s) {
        spdlog::error("event=head_persist_failed error=\"{}\"", s.error().message());
      }
    }
    return changed;
  }

  Status Persist() {
    if (head_file_.empty()) {
      return OkStatus();
    }
    return WriteFileAtomic(head_file_, registry::TreeHeadToJson(inner_->head()) + "\n", 0644);
  }

 private:
  std::unique_ptr<registry::ServingDirectory> inner_;
  std::string head_file_;
};

// OpenServingDirectory opens the registry for the server: it holds only the registrar's public
// key, never the private one, and refuses a registry older than the head it saw last.
Result<std::unique_ptr<registry::Directory>> OpenServingDirectory(const server::ServerConfig& c) {
  auto key = registry::LoadRegistrarPublicKey(c.registrar_public_key);
  if (!key) {
    return key.error();
  }
  registry::ServingDirectory::Options options;
  if (!c.registry_head_file.empty() && FileExists(c.registry_head_file)) {
    auto text = ReadFile(c.registry_head_file);
    if (!text) {
      return text.error();
    }
    auto head = registry::TreeHeadFromJson(*text);
    if (!head) {
      return head.error().WithContext(c.registry_head_file);
    }
    // ServingDirectory::Open checks the head's signature: the registrar's, or an enrollment key
    // that a registrar-signed batch in the log authorises (heads written after claims).
    options.trusted_head = std::move(*head);
  }
  auto directory = registry::ServingDirectory::Open(c.registry_db, *key, options);
  if (!directory) {
    return directory.error();
  }
  auto persisting =
      std::make_unique<PersistingDirectory>(std::move(*directory), c.registry_head_file);
  if (auto s = persisting->Persist(); !s) {
    return s.error().WithContext("registry head file");
  }
  return std::unique_ptr<registry::Directory>(std::move(persisting));
}

Status Serve(Context& ctx, const std::string& config_path, const std::string& log_level) {
  // Signals are taken by one thread with sigwait. Blocked before anything starts a thread (the
  // registry refresher, CRL reloads), so that no thread inherits the default action.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto config = server::LoadConfig(config_path);
  if (!config) {
    return config.error();
  }
  auto level = spdlog::level::from_str(log_level);
  if (level == spdlog::level::off && log_level != "off") {
    return Error(Code::kInvalidArgument,
                 "unknown log level '" + log_level + "' (trace, debug, info, warn, error, off)");
  }
  spdlog::set_default_logger(spdlog::stderr_logger_mt("hallmark"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(level);

  std::unique_ptr<registry::Directory> directory;
  if (!config->registry_db.empty()) {
    auto opened = OpenServingDirectory(*config);
    if (!opened) {
      return opened.error().WithContext("registry");
    }
    directory = std::move(*opened);
  }
  auto srv = server::Server::Create(*config, directory.get(), &SystemClock());
  if (!srv) {
    return srv.error();
  }
  auto enroll_config = LoadEnrollConfig(config_path, *config);
  if (!enroll_config) {
    return enroll_config.error();
  }
  if (enroll_config->has_value()) {
    if (auto s = MountEnrollHandlers(**srv, directory.get(), **enroll_config); !s) {
      return s;
    }
  }
  if (auto s = (*srv)->Start(); !s) {
    return s;
  }
  json ready = {{"event", "ready"}, {"listeners", json::array()}};
  for (const server::BoundListener& l : (*srv)->Listeners()) {
    ready["listeners"].push_back({{"policy", l.policy}, {"listen", EndpointText(l.endpoint)}});
    spdlog::info("event=listening policy={} address={}", l.policy, EndpointText(l.endpoint));
  }
  if (auto admin = (*srv)->Admin(); admin.has_value()) {
    ready["admin"] = EndpointText(*admin);
    spdlog::info("event=listening admin={}", EndpointText(*admin));
  }
  // One line on stdout says the server is ready and where; scripts and tests wait for it.
  std::cout << ready.dump() << std::endl;
  server::Server* raw = srv->get();
  std::thread waiter([raw, signals]() {
    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("event=stopping signal={}", sig);
    raw->Stop();
  });
  raw->Run();
  // Wake the waiter if Run returned for another reason.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  spdlog::info("event=stopped handshakes={}", raw->metrics().handshakes());
  ctx.exit_code = kExitOk;
  return OkStatus();
}

}  // namespace

void AddServeCommand(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("serve", "Run the mutual-TLS server (devices say hello here)");
  struct Opts {
    std::string config = "hallmark.toml";
    std::string log_level = "info";
  };
  auto opts = std::make_shared<Opts>();
  cmd->add_option("--config", opts->config, "Server configuration (TOML)")->capture_default_str();
  cmd->add_option("--log-level", opts->log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();
  cmd->footer(
      "Prints one JSON line {\"event\":\"ready\",...} on stdout once listening (port 0 in the "
      "config picks a free port and reports it there). Logs go to stderr. SIGINT/SIGTERM stop.");
  cmd->callback(Run(ctx, [&ctx, opts]() { return Serve(ctx, opts->config, opts->log_level); }));
}

}  // namespace hallmark::cli
