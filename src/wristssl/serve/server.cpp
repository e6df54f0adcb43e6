#include "wristssl/serve/server.h"

#include <ATen/Parallel.h>
#include <httplib.h>
#include <malloc.h>
#include <sys/socket.h>
#include <torch/torch.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "wristssl/infer/predictor.h"
#include "wristssl/io/read_image.h"
#include "wristssl/report/png_thumb.h"
#include "wristssl/serve_page.h"
#include "wristssl/util/audit.h"
#include "wristssl/util/fs.h"
#include "wristssl/util/json_text.h"
#include "wristssl/util/memory_format.h"
#include "wristssl/util/stop_signal.h"
#include "wristssl/version.h"

using nlohmann::json;
using steady = std::chrono::steady_clock;

namespace wristssl::serve {
namespace {

constexpr int kMaxImagesPerRequest = 64;
constexpr int kListenBacklog = 1024;  // the kernel caps it at net.core.somaxconn

// One image to score: encoded bytes (decoded by the batch worker) or a preprocessed input.
struct Job {
  std::string bytes;
  std::vector<float> input;
  bool preprocessed = false;
  bool heatmap = false, image = false;
  // Results.
  bool ok = false;
  int status = 400;
  std::string error, warning, heatmap_png, image_png;
  int width = 0, height = 0;  // of the decoded upload (0 for a preprocessed input)
  infer::Prediction prediction;
  std::promise<void> done;
};
using JobPtr = std::shared_ptr<Job>;

// Prometheus-style histogram with fixed upper bounds.
struct Histogram {
  std::vector<double> bounds;
  std::vector<int64_t> counts;  // per bound, plus +Inf
  double sum = 0;
  int64_t n = 0;
  explicit Histogram(std::vector<double> b) : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}
  void add(double v) {
    size_t i = 0;
    while (i < bounds.size() && v > bounds[i]) ++i;
    ++counts[i];
    sum += v;
    ++n;
  }
  void write(std::ostringstream& o, const std::string& name, const std::string& labels = "") const {
    int64_t cum = 0;
    const std::string sep = labels.empty() ? "" : ",";
    for (size_t i = 0; i < bounds.size(); ++i) {
      cum += counts[i];
      o << name << "_bucket{" << labels << sep << "le=\"" << bounds[i] << "\"} " << cum << "\n";
    }
    cum += counts.back();
    o << name << "_bucket{" << labels << sep << "le=\"+Inf\"} " << cum << "\n";
    o << name << "_sum" << (labels.empty() ? "" : "{" + labels + "}") << " " << sum << "\n";
    o << name << "_count" << (labels.empty() ? "" : "{" + labels + "}") << " " << n << "\n";
  }
};

std::string error_json(const std::string& reason) {
  return util::json_text(json{{"error", reason}});
}

// Flattens a (possibly nested) JSON array of numbers; throws naming the first non-number.
void flatten(const json& j, std::vector<float>& out) {
  if (j.is_array()) {
    for (const auto& e : j) flatten(e, out);
    return;
  }
  if (!j.is_number()) throw std::invalid_argument("FP32 data holds a non-number: " + j.dump().substr(0, 40));
  const double v = j.get<double>();
  const float f = static_cast<float>(v);
  if (!std::isfinite(v) || !std::isfinite(f)) throw std::invalid_argument("FP32 data holds a value that is not finite");
  out.push_back(f);
}

}  // namespace

struct Server::Impl {
  ServeOptions o;
  std::unique_ptr<infer::Predictor> predictor;
  std::string name, token;
  std::unique_ptr<httplib::Server> http;
  std::unique_ptr<util::AuditTrail> audit;
  std::thread listener, worker;
  int listen_fd = -1;  // the listening socket, seen by the socket-options hook
  int port = 0;

  // The batch queue.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<JobPtr> queue;
  bool stopping = false, worker_done = false;
  std::atomic<bool> accepting{true};
  std::atomic<int> in_flight{0};

  // Metrics.
  std::mutex metrics_mu;
  std::map<std::pair<std::string, int>, int64_t> requests;
  Histogram latency{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  Histogram batch_sizes{{1, 2, 4, 8, 16, 32, 64}};
  int64_t images_scored = 0;

  explicit Impl(const ServeOptions& options) : o(options) {
    infer::PredictorOptions po;
    po.precision = o.precision;
    po.threads = o.threads;
    predictor = std::make_unique<infer::Predictor>(
        models::read_bundle(models::model_or_shipped(o.model)), po);
    name = predictor->bundle().manifest.value("name", std::string("model"));
    if (!o.audit.empty())
      audit =
          std::make_unique<util::AuditTrail>(util::AuditOptions{o.audit, o.audit_max_mb << 20, 10});
    if (!o.token_file.empty()) {
      std::istringstream in(util::read_text(o.token_file));
      std::getline(in, token);
      while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
      if (token.size() < 16) throw std::runtime_error(o.token_file + ": the token must have at least 16 characters");
    }
    if (o.max_batch < 1 || o.queue < 1 || o.max_delay_ms < 0 || o.max_body_mb < 1) {
      throw std::runtime_error("serve: --max-batch, --queue and --max-body-mb must be >= 1, --max-delay-ms >= 0");
    }
  }

  // Queues jobs; false when the queue is full or the server is stopping.
  bool submit(const std::vector<JobPtr>& jobs) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping || !accepting || queue.size() + jobs.size() > static_cast<size_t>(o.queue)) return false;
      for (const auto& j : jobs) queue.push_back(j);
    }
    cv.notify_all();
    return true;
  }

  void worker_loop() {
    while (true) {
      std::vector<JobPtr> batch;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) break;  // stopping, and nothing left
        const auto deadline = steady::now() + std::chrono::milliseconds(o.max_delay_ms);
        while (static_cast<int>(batch.size()) < o.max_batch) {
          if (!queue.empty()) {
            batch.push_back(queue.front());
            queue.pop_front();
          } else if (stopping || !cv.wait_until(lock, deadline, [&] { return stopping || !queue.empty(); })) {
            break;
          }
        }
      }
      process(batch);
    }
    std::lock_guard<std::mutex> lock(mu);
    worker_done = true;
  }

  void process(const std::vector<JobPtr>& batch) {
    // Decode on LibTorch's own thread team (extra threads would stall it: see predict).
    std::vector<io::Image> images(batch.size());
    at::parallel_for(0, static_cast<int64_t>(batch.size()), 1, [&](int64_t first, int64_t last) {
      for (int64_t k = first; k < last; ++k) {
        Job& j = *batch[k];
        if (j.preprocessed) continue;
        try {
          images[k] = io::decode_image(reinterpret_cast<const uint8_t*>(j.bytes.data()), j.bytes.size(), "upload");
          j.warning = infer::modality_warning(images[k].info);
          j.input = predictor->input(images[k]);
          j.width = images[k].info.width;
          j.height = images[k].info.height;
          j.bytes.clear();  // the upload is not kept
        } catch (const io::ImageError& e) {
          j.error = std::string(io::error_kind_name(e.kind())) + ": " + e.reason();
          j.status = 400;
        } catch (const std::exception& e) {
          j.error = e.what();
          j.status = 400;
        }
      }
    });
    std::vector<std::vector<float>> inputs;
    std::vector<size_t> ok;
    bool heat = false;
    for (size_t k = 0; k < batch.size(); ++k) {
      if (!batch[k]->error.empty()) continue;
      inputs.push_back(batch[k]->input);
      ok.push_back(k);
      heat = heat || batch[k]->heatmap;
    }
    if (!inputs.empty()) {
      try {
        const torch::Tensor x = util::channels_last(predictor->batch(inputs));
        torch::Tensor maps;
        const std::vector<infer::Prediction> preds = heat ? predictor->predict_with_heatmaps(x, &maps) : predictor->predict(x);
        for (size_t i = 0; i < ok.size(); ++i) {
          Job& j = *batch[ok[i]];
          j.prediction = preds[i];
          j.ok = true;
          j.status = 200;
          const io::Image& img = images[ok[i]];
          // The page draws the boxes itself (over the radiograph or the heatmap): none burnt in.
          if (j.heatmap && !j.preprocessed) j.heatmap_png = infer::heatmap_png(img, maps[static_cast<int64_t>(i)]);
          if (j.image && !j.preprocessed) j.image_png = infer::display_png(img);
        }
      } catch (const std::exception& e) {
        for (size_t k : ok) {
          batch[k]->error = std::string("inference failed: ") + e.what();
          batch[k]->status = 500;
        }
      }
    }
    {
      std::lock_guard<std::mutex> lock(metrics_mu);
      batch_sizes.add(static_cast<double>(batch.size()));
      images_scored += static_cast<int64_t>(ok.size());
    }
    for (const auto& j : batch) j->done.set_value();
  }

  // Runs jobs through the queue and waits; returns false (with a response set) when they were refused.
  bool run_jobs(const std::vector<JobPtr>& jobs, httplib::Response& res) {
    if (!submit(jobs)) {
      res.status = 503;
      res.set_header("Retry-After", "1");
      res.set_content(error_json(accepting ? "the queue is full; retry shortly" : "the server is shutting down"),
                      "application/json");
      return false;
    }
    for (const auto& j : jobs) j->done.get_future().wait();
    return true;
  }

  json model_json() const {
    const auto& m = predictor->bundle().manifest;
    return {{"model", predictor->bundle().id()},
            {"name", name},
            {"sha256", predictor->bundle().sha256},
            {"threshold", predictor->rule().threshold},
            {"refer_band", {predictor->rule().refer_lo, predictor->rule().refer_hi}},
            {"input_size", predictor->preprocessing().input_size},
            {"localisation", predictor->box_decoding().to_json()},
            {"intended_use", m.value("intended_use", std::string())}};
  }

  bool authorised(const httplib::Request& req) const {
    if (token.empty()) return true;
    const std::string want = "Bearer " + token;
    const std::string got = req.get_header_value("Authorization");
    // Constant-time comparison.
    unsigned diff = got.size() == want.size() ? 0u : 1u;
    for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) diff |= static_cast<unsigned>(got[i] ^ want[i]);
    return diff == 0;
  }

  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  // Every route: the token (unless public), timing for the log and the metrics, JSON errors for exceptions.
  httplib::Server::Handler route(const std::string& endpoint, bool needs_token, Handler fn) {
    return [this, endpoint, needs_token, fn](const httplib::Request& req, httplib::Response& res) {
      const auto t0 = steady::now();
      ++in_flight;
      res.set_header("X-Wristssl-Endpoint", endpoint);
      if (needs_token && !authorised(req)) {
        res.status = 401;
        res.set_header("WWW-Authenticate", "Bearer");
        res.set_content(error_json("missing or wrong bearer token"), "application/json");
      } else {
        try {
          fn(req, res);
        } catch (const std::exception& e) {
          res.status = 400;
          res.set_content(error_json(e.what()), "application/json");
        }
      }
      --in_flight;
      const double s = std::chrono::duration<double>(steady::now() - t0).count();
      res.set_header("X-Wristssl-Seconds", std::to_string(s));
      std::lock_guard<std::mutex> lock(metrics_mu);
      latency.add(s);
    };
  }

  void log_request(const httplib::Request& req, const httplib::Response& res) {
    std::string endpoint = res.get_header_value("X-Wristssl-Endpoint");
    if (endpoint.empty()) endpoint = "other";
    {
      std::lock_guard<std::mutex> lock(metrics_mu);
      ++requests[{endpoint, res.status}];
    }
    if (audit) audit_request(req, res, endpoint);
    if (!o.log) return;
    // Never the query, the body or any header value: no patient data reaches the log.
    const json line = {{"ts", std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()},
                       {"method", req.method},
                       {"endpoint", endpoint},
                       {"status", res.status},
                       {"seconds", res.has_header("X-Wristssl-Seconds") ? std::stod(res.get_header_value("X-Wristssl-Seconds")) : 0.0},
                       {"bytes_in", req.body.size()},
                       {"bytes_out", res.body.size()}};
    std::fprintf(stderr, "%s\n", util::json_text(line).c_str());
  }

  // The audit record of a request: who (address; whether a token was shown), what (the endpoint, a
  // hash of the uploaded bytes, never the bytes, the query or a header value), and what came back
  // (status, model, decisions and probabilities).
  void audit_request(const httplib::Request& req, const httplib::Response& res,
                     const std::string& endpoint) {
    json r = {{"event", "request"},
              {"service", "serve"},
              {"client", req.remote_addr},
              {"method", req.method},
              {"endpoint", endpoint},
              {"status", res.status},
              {"token", token.empty()       ? "not required"
                        : res.status == 401 ? "refused"
                                            : "accepted"},
              {"bytes_in", req.body.size()}};
    if (!req.body.empty()) r["body_sha256"] = util::audit_hash(req.body);
    if (res.status == 200 && (endpoint == "/v1/predict" || endpoint == "/v2/models/{name}/infer")) {
      r["model"] = predictor->bundle().id();
      r["model_sha256"] = predictor->bundle().sha256;
      try {
        const json out = json::parse(res.body);
        if (out.contains("decision")) {
          r["decisions"] = {out["decision"]};
          r["probabilities"] = {out["probability"]};
        } else {
          for (const json& t : out.value("outputs", json::array())) {
            if (t.value("name", "") == "decision") r["decisions"] = t["data"];
            if (t.value("name", "") == "probability") r["probabilities"] = t["data"];
          }
        }
      } catch (const std::exception&) {
      }
    }
    audit->append(r);
  }

  std::string metrics_text() {
    std::ostringstream o;
    std::lock_guard<std::mutex> lock(metrics_mu);
    o << "# HELP wristssl_requests_total HTTP requests by endpoint and status.\n# TYPE wristssl_requests_total counter\n";
    for (const auto& [k, v] : requests) {
      o << "wristssl_requests_total{endpoint=\"" << k.first << "\",status=\"" << k.second << "\"} " << v << "\n";
    }
    o << "# HELP wristssl_request_duration_seconds Time spent handling a request.\n# TYPE wristssl_request_duration_seconds histogram\n";
    latency.write(o, "wristssl_request_duration_seconds");
    o << "# HELP wristssl_batch_size Images per forward pass.\n# TYPE wristssl_batch_size histogram\n";
    batch_sizes.write(o, "wristssl_batch_size");
    size_t depth = 0;
    {
      std::lock_guard<std::mutex> q(mu);
      depth = queue.size();
    }
    o << "# HELP wristssl_queue_depth Images waiting for a forward pass.\n# TYPE wristssl_queue_depth gauge\n";
    o << "wristssl_queue_depth " << depth << "\n";
    o << "# HELP wristssl_images_scored_total Images scored.\n# TYPE wristssl_images_scored_total counter\n";
    o << "wristssl_images_scored_total " << images_scored << "\n";
    return o.str();
  }

  void infer_v2(const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != name) {
      res.status = 404;
      res.set_content(error_json("unknown model '" + std::string(req.matches[1]) + "'; this server has '" + name + "'"),
                      "application/json");
      return;
    }
    json body;
    try {
      body = json::parse(req.body);
    } catch (const std::exception& e) {
      throw std::invalid_argument(std::string("malformed JSON: ") + e.what());
    }
    if (!body.is_object() || !body.contains("inputs") || !body["inputs"].is_array() || body["inputs"].size() != 1) {
      throw std::invalid_argument("expected {\"inputs\": [one tensor named \"input\" (FP32) or \"image\" (BYTES)]}");
    }
    const json& t = body["inputs"][0];
    const std::string tname = t.value("name", std::string());
    const std::string dtype = t.value("datatype", std::string());
    if (!t.contains("shape") || !t["shape"].is_array() || !t.contains("data")) {
      throw std::invalid_argument("the input tensor needs \"shape\" and \"data\"");
    }
    std::vector<int64_t> shape;
    for (const auto& d : t["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > 1 << 20) {
        throw std::invalid_argument("shape holds a bad dimension: " + d.dump());
      }
      shape.push_back(d.get<int64_t>());
    }
    std::vector<JobPtr> jobs;
    const int s = predictor->preprocessing().input_size;
    if (tname == "input") {
      if (dtype != "FP32") throw std::invalid_argument("input 'input' has datatype " + dtype + "; expected FP32");
      if (shape.size() != 4 || shape[1] != 1 || shape[2] != s || shape[3] != s) {
        throw std::invalid_argument("input 'input' must have shape [N, 1, " + std::to_string(s) + ", " + std::to_string(s) + "]");
      }
      if (shape[0] > kMaxImagesPerRequest) throw std::invalid_argument("at most 64 images per request");
      std::vector<float> data;
      flatten(t["data"], data);
      const int64_t want = shape[0] * s * s;
      if (static_cast<int64_t>(data.size()) != want) {
        throw std::invalid_argument("shape says " + std::to_string(want) + " values, data holds " + std::to_string(data.size()));
      }
      for (int64_t n = 0; n < shape[0]; ++n) {
        auto j = std::make_shared<Job>();
        j->preprocessed = true;
        j->input.assign(data.begin() + n * s * s, data.begin() + (n + 1) * s * s);
        jobs.push_back(j);
      }
    } else if (tname == "image") {
      if (dtype != "BYTES") throw std::invalid_argument("input 'image' has datatype " + dtype + "; expected BYTES");
      if (shape.size() != 1 || !t["data"].is_array() || static_cast<int64_t>(t["data"].size()) != shape[0]) {
        throw std::invalid_argument("input 'image' must have shape [N] and N base64 strings in data");
      }
      if (shape[0] > kMaxImagesPerRequest) throw std::invalid_argument("at most 64 images per request");
      for (const auto& d : t["data"]) {
        if (!d.is_string()) throw std::invalid_argument("BYTES data must be base64 strings");
        auto j = std::make_shared<Job>();
        try {
          j->bytes = report::base64_decode(d.get<std::string>());
        } catch (const std::invalid_argument&) {
          throw std::invalid_argument("BYTES data is not base64");
        }
        jobs.push_back(j);
      }
    } else {
      throw std::invalid_argument("unknown input '" + tname + "' (input: FP32 [N,1,S,S]; image: BYTES [N])");
    }
    if (!run_jobs(jobs, res)) return;
    json prob = json::array(), decision = json::array(), margin = json::array(),
         boxes = json::array();
    const int k_boxes = predictor->box_decoding().max_boxes;
    for (const auto& j : jobs) {
      if (!j->ok) {
        res.status = j->status;
        res.set_content(error_json(j->error), "application/json");
        return;
      }
      prob.push_back(j->prediction.probability);
      decision.push_back(j->prediction.decision);
      margin.push_back(j->prediction.margin);
      // [K, 5] per image: x0, y0, x1, y1 normalised to the image, calibrated probability; rows
      // past the boxes found are -1.
      for (int k = 0; k < k_boxes; ++k) {
        const bool has = k < static_cast<int>(j->prediction.boxes.size());
        const data::ScoredBox b =
            has ? j->prediction.boxes[static_cast<size_t>(k)] : data::ScoredBox{};
        for (double v : {b.box.x0, b.box.y0, b.box.x1, b.box.y1, b.score})
          boxes.push_back(has ? v : -1.0);
      }
    }
    const int64_t n = static_cast<int64_t>(jobs.size());
    json out = {
        {"model_name", name},
        {"model_version", predictor->bundle().sha256.substr(0, 12)},
        {"outputs",
         {{{"name", "probability"}, {"datatype", "FP32"}, {"shape", {n, 1}}, {"data", prob}},
          {{"name", "decision"}, {"datatype", "BYTES"}, {"shape", {n, 1}}, {"data", decision}},
          {{"name", "margin"}, {"datatype", "FP32"}, {"shape", {n, 1}}, {"data", margin}},
          {{"name", "boxes"}, {"datatype", "FP32"}, {"shape", {n, k_boxes, 5}}, {"data", boxes}}}}};
    if (body.contains("id")) out["id"] = body["id"];
    res.set_content(util::json_text(out), "application/json");
  }

  void predict_v1(const httplib::Request& req, httplib::Response& res) {
    if (req.body.empty()) throw std::invalid_argument("the body must be one image file (PNG, JPEG or DICOM)");
    auto j = std::make_shared<Job>();
    j->bytes = req.body;
    j->heatmap = req.get_param_value("heatmap") == "1";
    j->image = req.get_param_value("image") == "1";
    if (!run_jobs({j}, res)) return;
    if (!j->ok) {
      res.status = j->status;
      res.set_content(error_json(j->error), "application/json");
      return;
    }
    json out = model_json();
    out["probability"] = j->prediction.probability;
    out["margin"] = j->prediction.margin;
    out["decision"] = j->prediction.decision;
    out["width"] = j->width;
    out["height"] = j->height;
    out["boxes"] = infer::boxes_json(j->prediction, predictor->rule(), j->width, j->height);
    if (!j->warning.empty()) out["warning"] = j->warning;
    if (!j->heatmap_png.empty()) out["heatmap_png_base64"] = report::base64_encode(j->heatmap_png);
    if (!j->image_png.empty()) out["image_png_base64"] = report::base64_encode(j->image_png);
    res.set_content(util::json_text(out), "application/json");
  }

  void setup_routes() {
    httplib::Server& s = *http;
    s.new_task_queue = [n = o.http_threads] { return new httplib::ThreadPool(static_cast<size_t>(std::max(1, n))); };
    s.set_payload_max_length(static_cast<size_t>(o.max_body_mb) * 1024 * 1024);
    s.set_read_timeout(o.read_timeout_s, 0);
    s.set_write_timeout(o.write_timeout_s, 0);
    s.set_keep_alive_timeout(5);
    // Remember the listening socket: Debian's cpp-httplib is a compiled library that listens with a
    // backlog of 5, and start() widens it.
    s.set_socket_options([this](socket_t sock) {
      httplib::default_socket_options(sock);
      listen_fd = sock;
    });
    s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.body.empty()) {
        // cpp-httplib caps form-encoded bodies at 8 KB: a file sent as a form (curl --data-binary without a
        // Content-Type) lands here.
        const bool form = req.get_header_value("Content-Type").find("x-www-form-urlencoded") != std::string::npos;
        const std::string reason =
            res.status == 413 ? (form ? "the body was sent as a form (application/x-www-form-urlencoded); send the file as "
                                        "application/octet-stream (curl: -H 'Content-Type: application/octet-stream')"
                                      : "the body is larger than --max-body-mb")
            : res.status == 404 ? "no such endpoint"
                                : "HTTP " + std::to_string(res.status);
        res.set_content(error_json(reason), "application/json");
      }
    });
    s.set_logger([this](const httplib::Request& req, const httplib::Response& res) { log_request(req, res); });
    const std::string model_re = "/v2/models/([^/]+)";
    s.Get("/v2/health/live", route("/v2/health/live", false, [](const auto&, auto& res) {
            res.set_content(json{{"live", true}}.dump(), "application/json");
          }));
    s.Get("/v2/health/ready", route("/v2/health/ready", false, [this](const auto&, auto& res) {
            const bool ready = accepting.load();
            res.status = ready ? 200 : 503;
            res.set_content(json{{"ready", ready}}.dump(), "application/json");
          }));
    s.Get("/v2", route("/v2", true, [](const auto&, auto& res) {
            res.set_content(json{{"name", "wristssl"}, {"version", kVersion}, {"extensions", json::array()}}.dump(),
                            "application/json");
          }));
    s.Get(model_re, route("/v2/models/{name}", true, [this](const httplib::Request& req, httplib::Response& res) {
            if (req.matches[1] != name) {
              res.status = 404;
              res.set_content(error_json("unknown model '" + std::string(req.matches[1]) + "'"), "application/json");
              return;
            }
            const int sz = predictor->preprocessing().input_size;
            res.set_content(
                json{{"name", name},
                     {"versions", {predictor->bundle().sha256.substr(0, 12)}},
                     {"platform", "wristssl_libtorch"},
                     {"inputs",
                      {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {-1, 1, sz, sz}}},
                       {{"name", "image"}, {"datatype", "BYTES"}, {"shape", {-1}}}}},
                     {"outputs",
                      {{{"name", "probability"}, {"datatype", "FP32"}, {"shape", {-1, 1}}},
                       {{"name", "decision"}, {"datatype", "BYTES"}, {"shape", {-1, 1}}},
                       {{"name", "margin"}, {"datatype", "FP32"}, {"shape", {-1, 1}}},
                       {{"name", "boxes"},
                        {"datatype", "FP32"},
                        {"shape", {-1, predictor->box_decoding().max_boxes, 5}}}}},
                     {"parameters", model_json()}}
                    .dump(),
                "application/json");
          }));
    s.Get(model_re + "/ready", route("/v2/models/{name}/ready", true, [this](const httplib::Request& req, httplib::Response& res) {
            const bool known = req.matches[1] == name;
            res.status = known ? (accepting ? 200 : 503) : 404;
            res.set_content(json{{"name", std::string(req.matches[1])}, {"ready", known && accepting.load()}}.dump(),
                            "application/json");
          }));
    s.Post(model_re + "/infer", route("/v2/models/{name}/infer", true, [this](const auto& req, auto& res) { infer_v2(req, res); }));
    s.Post("/v1/predict", route("/v1/predict", true, [this](const auto& req, auto& res) { predict_v1(req, res); }));
    s.Get("/info", route("/info", false, [this](const auto&, auto& res) { res.set_content(model_json().dump(), "application/json"); }));
    s.Get("/metrics", route("/metrics", true, [this](const auto&, auto& res) {
            res.set_content(metrics_text(), "text/plain; version=0.0.4");
          }));
    s.Get("/", route("/", false, [](const auto&, auto& res) { res.set_content(kServePage, "text/html; charset=utf-8"); }));
  }
};

Server::Server(const ServeOptions& options) : impl_(std::make_unique<Impl>(options)) {}

Server::~Server() { stop(); }

const std::string& Server::model_name() const { return impl_->name; }

int Server::start() {
  Impl& m = *impl_;
  const bool tls = !m.o.tls_cert.empty() || !m.o.tls_key.empty();
  if (tls) {
    if (m.o.tls_cert.empty() || m.o.tls_key.empty()) throw std::runtime_error("serve: give both --tls-cert and --tls-key");
    m.http = std::make_unique<httplib::SSLServer>(m.o.tls_cert.c_str(), m.o.tls_key.c_str());
  } else {
    m.http = std::make_unique<httplib::Server>();
  }
  if (!m.http->is_valid()) throw std::runtime_error("serve: cannot set up TLS from " + m.o.tls_cert + " and " + m.o.tls_key);
  m.setup_routes();
  if (m.o.port == 0) {
    m.port = m.http->bind_to_any_port(m.o.host);
    if (m.port <= 0) throw std::runtime_error("serve: cannot bind " + m.o.host);
  } else {
    if (!m.http->bind_to_port(m.o.host, m.o.port)) {
      throw std::runtime_error("serve: cannot bind " + m.o.host + ":" + std::to_string(m.o.port) + " (in use, or not an address of this machine)");
    }
    m.port = m.o.port;
  }
  // A backlog of 5 overflowed under a burst of a dozen connections (the kernel's TcpExtListenOverflows
  // counted them): each dropped handshake cost its client a 1-3 s SYN retransmission, or a write timeout
  // under load. Calling listen() again on a listening socket sets a new backlog (capped by somaxconn).
  if (m.listen_fd >= 0 && ::listen(m.listen_fd, kListenBacklog) != 0) {
    std::fprintf(stderr, "serve: warning: could not widen the listen backlog: %s\n", std::strerror(errno));
  }
  m.worker = std::thread([&m] { m.worker_loop(); });
  m.listener = std::thread([&m] { m.http->listen_after_bind(); });
  return m.port;
}

void Server::stop() {
  Impl& m = *impl_;
  if (!m.http) return;
  m.accepting = false;  // new work gets 503 from here on
  {
    std::lock_guard<std::mutex> lock(m.mu);
    m.stopping = true;    // the worker drains the queue, then ends
  }
  m.cv.notify_all();
  if (m.worker.joinable()) m.worker.join();
  // Let handlers that were waiting on the worker write their answers, then close.
  for (int i = 0; i < 200 && m.in_flight > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  m.http->stop();
  if (m.listener.joinable()) m.listener.join();
  m.http.reset();
}

int run_serve(const ServeOptions& o) {
#ifdef __GLIBC__
  // glibc gives every thread that allocates its own arena (up to 8 per core): with 32 connection threads
  // the resident memory kept growing under load (384 -> 462 MB over 900 requests; 371 -> 416 MB with 2).
  mallopt(M_ARENA_MAX, 2);
#endif
  Server server(o);
  const bool loopback = o.host == "127.0.0.1" || o.host == "localhost" || o.host == "::1";
  if (!loopback && o.token_file.empty()) {
    std::fprintf(stderr, "serve: WARNING: listening on %s without a token (--token-file): anyone who can reach this "
                         "address can use the model\n", o.host.c_str());
  }
  util::install_stop_handlers();
  const int port = server.start();
  const bool tls = !o.tls_cert.empty();
  std::fprintf(stderr,
               "serve: %s on %s://%s:%d/ (model name in URLs: %s; batch up to %d, %d ms; %s%s)\n",
               models::model_or_shipped(o.model).c_str(), tls ? "https" : "http", o.host.c_str(),
               port, server.model_name().c_str(), o.max_batch, o.max_delay_ms,
               o.audit.empty() ? "no audit trail" : "audit trail ", o.audit.c_str());
  while (!util::stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::fprintf(stderr, "serve: signal %d: finishing the requests in flight, refusing new ones\n",
               util::take_stop_signal());
  server.stop();
  std::fprintf(stderr, "serve: stopped\n");
  return 0;
}

}  // namespace wristssl::serve
