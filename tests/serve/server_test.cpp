#include "wristssl/serve/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "test_paths.h"
#include "wristssl/infer/predictor.h"
#include "wristssl/io/read_image.h"
#include "wristssl/models/bundle.h"
#include "wristssl/report/png_thumb.h"
#include "wristssl/train/run_bundle.h"
#include "wristssl/util/audit.h"
#include "wristssl/util/fs.h"

using nlohmann::json;

namespace wristssl::serve {
namespace {

std::string read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::temp_dir("serve"));
    models::Bundle b = train::untrained_bundle(64, 48, 9, "wrist");
    models::write_bundle(b, *dir_ + "/model.wristssl");
    util::atomic_write(*dir_ + "/token", "0123456789abcdef0123\n");
    ServeOptions o;
    o.model = *dir_ + "/model.wristssl";
    o.port = 0;
    o.token_file = *dir_ + "/token";
    o.max_body_mb = 4;
    o.read_timeout_s = 1;
    o.threads = 2;
    o.log = false;
    o.audit = *dir_ + "/audit.jsonl";
    server_ = new Server(o);
    port_ = server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
  }
  httplib::Client client(bool token = true) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(30, 0);
    if (token) c.set_bearer_token_auth("0123456789abcdef0123");
    return c;
  }
  static std::string sample(const std::string& rel) { return read_bytes(testing::repo_path(rel)); }
  // The same file through predict's path.
  static infer::Prediction prediction(const std::string& rel) {
    infer::Predictor p(models::read_bundle(*dir_ + "/model.wristssl"), {"fp32", -1});
    const auto x = p.batch({p.input(io::read_image(testing::repo_path(rel)))});
    return p.predict(x)[0];
  }
  static double predicted(const std::string& rel) { return prediction(rel).probability; }
  static std::string* dir_;
  static Server* server_;
  static int port_;
};
std::string* Serve::dir_ = nullptr;
Server* Serve::server_ = nullptr;
int Serve::port_ = 0;

const char* kPng = "samples/grazpedwri-dx/images/0004_0542630449_01_WRI-L1_M003.png";
const char* kDcm = "samples/dicom/CR-MONO1-10-chest.dcm";

TEST_F(Serve, AnswersTheOpenInferenceProtocolLikePredict) {
  auto c = client();
  auto r = c.Get("/v2/health/live");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = client(false).Get("/v2/health/ready");  // health needs no token
  ASSERT_TRUE(r);
  EXPECT_EQ(json::parse(r->body)["ready"], true);
  r = c.Get("/v2/models/wrist");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json meta = json::parse(r->body);
  EXPECT_EQ(meta["name"], "wrist");
  EXPECT_EQ(meta["inputs"][0]["shape"], json({-1, 1, 48, 48}));
  // BYTES: an encoded image, base64 in JSON.
  const json body = {
      {"id", "req-1"},
      {"inputs",
       {{{"name", "image"},
         {"datatype", "BYTES"},
         {"shape", {2}},
         {"data", {report::base64_encode(sample(kPng)), report::base64_encode(sample(kDcm))}}}}}};
  r = c.Post("/v2/models/wrist/infer", body.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json out = json::parse(r->body);
  EXPECT_EQ(out["id"], "req-1");
  EXPECT_EQ(out["model_name"], "wrist");
  EXPECT_EQ(out["outputs"][0]["name"], "probability");
  EXPECT_EQ(out["outputs"][0]["shape"], json({2, 1}));
  EXPECT_NEAR(out["outputs"][0]["data"][0].get<double>(), predicted(kPng), 1e-6);
  EXPECT_NEAR(out["outputs"][0]["data"][1].get<double>(), predicted(kDcm), 1e-6);
  // The boxes: [N, K, 5] (x0, y0, x1, y1 normalised, probability), rows past the boxes found -1,
  // declared in the model's metadata.
  const int k = meta["outputs"][3]["shape"][1].get<int>();
  EXPECT_EQ(meta["outputs"][3]["name"], "boxes");
  EXPECT_EQ(meta["outputs"][3]["shape"], json({-1, k, 5}));
  EXPECT_EQ(out["outputs"][3]["name"], "boxes");
  EXPECT_EQ(out["outputs"][3]["shape"], json({2, k, 5}));
  const json& flat = out["outputs"][3]["data"];
  ASSERT_EQ(flat.size(), static_cast<size_t>(2 * k * 5));
  const infer::Prediction png = prediction(kPng);
  ASSERT_LE(png.boxes.size(), static_cast<size_t>(k));
  for (int b = 0; b < k; ++b) {
    const bool has = b < static_cast<int>(png.boxes.size());
    EXPECT_NEAR(flat[b * 5 + 0].get<double>(), has ? png.boxes[b].box.x0 : -1.0, 1e-6);
    EXPECT_NEAR(flat[b * 5 + 4].get<double>(), has ? png.boxes[b].score : -1.0, 1e-6);
  }
  // FP32: the preprocessed tensor, nested or flat.
  infer::Predictor p(models::read_bundle(*dir_ + "/model.wristssl"), {"fp32", -1});
  const std::vector<float> x = p.input(io::read_image(testing::repo_path(kPng)));
  const json t = {
      {"inputs",
       {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {1, 1, 48, 48}}, {"data", x}}}}};
  r = c.Post("/v2/models/wrist/infer", t.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NEAR(json::parse(r->body)["outputs"][0]["data"][0].get<double>(), predicted(kPng), 1e-6);
}

TEST_F(Serve, PredictsAFileWithItsHeatmap) {
  auto r = client().Post("/v1/predict?heatmap=1&image=1", sample(kPng), "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = json::parse(r->body);
  EXPECT_NEAR(j["probability"].get<double>(), predicted(kPng), 1e-6);
  EXPECT_TRUE(j["decision"] == "fracture" || j["decision"] == "no_fracture" ||
              j["decision"] == "refer");
  EXPECT_EQ(j["sha256"].get<std::string>().size(), 64u);
  EXPECT_GT(j["heatmap_png_base64"].get<std::string>().size(), 1000u);
  EXPECT_GT(j["image_png_base64"].get<std::string>().size(), 1000u);
  // The boxes in the upload's pixels, as predict --json writes them.
  const io::Image img = io::read_image(testing::repo_path(kPng));
  EXPECT_EQ(j["width"], img.info.width);
  EXPECT_EQ(j["height"], img.info.height);
  const infer::Prediction p = prediction(kPng);
  infer::Predictor pr(models::read_bundle(*dir_ + "/model.wristssl"), {"fp32", -1});
  const json want = infer::boxes_json(p, pr.rule(), img.info.width, img.info.height);
  ASSERT_EQ(j["boxes"].size(), want.size());
  ASSERT_FALSE(want.empty());
  for (size_t b = 0; b < want.size(); ++b) {
    for (const char* key : {"x0", "y0", "x1", "y1", "band", "shown"})
      EXPECT_EQ(j["boxes"][b][key], want[b][key]) << key;
    EXPECT_NEAR(j["boxes"][b]["probability"].get<double>(), want[b]["probability"].get<double>(),
                1e-6);
  }
  r = client(false).Get("/");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("id=\"file\""), std::string::npos);
  EXPECT_EQ(r->body.find("<script src="), std::string::npos) << "no external scripts";
}

// Every hostile request gets a 4xx with a JSON reason, and the server keeps serving.
// The audit trail: a record per request, with the client, the endpoint, the status, whether the
// token was accepted, a hash of the body (never the body) and, for a prediction, the model and the
// decision.
TEST_F(Serve, AuditsEveryRequestWithoutTheImage) {
  const std::string path = *dir_ + "/audit.jsonl";
  auto lines = [&] {
    std::vector<json> out;
    std::ifstream in(path);
    for (std::string l; std::getline(in, l);) out.push_back(json::parse(l));
    return out;
  };
  // Records of earlier tests' requests may still be on their way: wait until the file is quiet.
  size_t before = lines().size();
  for (int quiet = 0; quiet < 10;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const size_t n = lines().size();
    quiet = n == before ? quiet + 1 : 0;
    before = n;
  }
  const std::string png = sample(kPng);
  auto ok = client().Post("/v1/predict", png, "application/octet-stream");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200);
  auto refused = client(false).Post("/v1/predict", png, "application/octet-stream");
  ASSERT_TRUE(refused);
  auto bad = client().Post("/v1/predict", "not an image", "application/octet-stream");
  ASSERT_TRUE(bad);
  // The record is appended after the answer is sent: wait for it.
  std::vector<json> got;
  for (int i = 0; i < 100 && (got = lines()).size() < before + 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_GE(got.size(), before + 3);
  // Each record is appended after its answer went out, so they may land in any order.
  std::map<int, json> mine;
  for (size_t i = before; i < got.size(); ++i) mine[got[i]["status"].get<int>()] = got[i];
  ASSERT_EQ(mine.size(), 3u);
  const json& a = mine[200];
  EXPECT_EQ(a["event"], "request");
  EXPECT_EQ(a["client"], "127.0.0.1");
  EXPECT_EQ(a["endpoint"], "/v1/predict");
  EXPECT_EQ(a["status"], 200);
  EXPECT_EQ(a["token"], "accepted");
  EXPECT_EQ(a["bytes_in"], png.size());
  EXPECT_EQ(a["body_sha256"], util::audit_hash(png));
  EXPECT_EQ(a["decisions"], json::array({json::parse(ok->body)["decision"]}));
  EXPECT_NEAR(a["probabilities"][0].get<double>(),
              json::parse(ok->body)["probability"].get<double>(), 1e-12);
  EXPECT_EQ(a["model"], json::parse(ok->body)["model"]);
  EXPECT_EQ(mine[401]["token"], "refused");
  EXPECT_FALSE(mine[401].contains("decisions"));
  EXPECT_EQ(mine[400]["token"], "accepted");
  EXPECT_EQ(mine[400]["body_sha256"], util::audit_hash("not an image"));
  EXPECT_EQ(util::verify_audit_chain({path}), "");
  EXPECT_EQ(util::read_text(path).find("not an image"), std::string::npos);
}

TEST_F(Serve, RefusesHostileRequestsAndKeepsServing) {
  auto c = client();
  auto expect = [&](const httplib::Result& r, int status, const std::string& what) {
    ASSERT_TRUE(r) << what;
    EXPECT_EQ(r->status, status) << what << ": " << r->body;
    EXPECT_NO_THROW(json::parse(r->body).at("error")) << what << ": " << r->body;
  };
  expect(client(false).Post("/v1/predict", sample(kPng), "application/octet-stream"), 401,
         "no token");
  {
    httplib::Client w("127.0.0.1", port_);
    w.set_bearer_token_auth("wrong-token-wrong-token");
    expect(w.Get("/v2/models/wrist"), 401, "wrong token");
  }
  expect(c.Post("/v1/predict", std::string(5 << 20, 'x'), "application/octet-stream"), 413,
         "body over --max-body-mb");
  expect(c.Post("/v1/predict", "\x89PNG\r\n\x1a\ngarbage", "application/octet-stream"), 400,
         "corrupt PNG");
  const std::string png = sample(kPng);
  expect(c.Post("/v1/predict", png.substr(0, png.size() / 3), "application/octet-stream"), 400,
         "truncated PNG");
  std::string dcm = sample(kDcm);
  const size_t at =
      dcm.find(std::string("\xe0\x7f\x10\x00", 4));  // pixel data (7FE0,0010): a hostile length
  ASSERT_NE(at, std::string::npos);
  for (int k = 4; k < 8; ++k) dcm[at + k] = static_cast<char>(0xff);
  dcm[at + 6] = static_cast<char>(0x7f);
  expect(c.Post("/v1/predict", dcm, "application/octet-stream"), 400,
         "DICOM with a hostile length");
  expect(c.Post("/v1/predict", "", "application/octet-stream"), 400, "empty body");
  auto tensor = [](json shape, json data, std::string dtype = "FP32") {
    return json{
        {"inputs", {{{"name", "input"}, {"datatype", dtype}, {"shape", shape}, {"data", data}}}}}
        .dump();
  };
  expect(c.Post("/v2/models/wrist/infer", tensor({1, 1, 48, 48}, std::vector<float>(100, 0.f)),
                "application/json"),
         400, "shape and data disagree");
  expect(
      c.Post("/v2/models/wrist/infer",
             tensor({1, 1, 48, 48}, std::vector<float>(48 * 48, 0.f), "INT8"), "application/json"),
      400, "wrong datatype");
  std::vector<json> bad(48 * 48, 0.0);
  bad[7] = "NaN";
  expect(c.Post("/v2/models/wrist/infer", tensor({1, 1, 48, 48}, bad), "application/json"), 400,
         "NaN");
  bad[7] = 1e39;
  expect(c.Post("/v2/models/wrist/infer", tensor({1, 1, 48, 48}, bad), "application/json"), 400,
         "Inf after FP32");
  expect(c.Post("/v2/models/wrist/infer", tensor({1, 1, 32, 32}, std::vector<float>(32 * 32, 0.f)),
                "application/json"),
         400, "wrong image size");
  expect(c.Post("/v2/models/other/infer", tensor({1, 1, 48, 48}, std::vector<float>(48 * 48, 0.f)),
                "application/json"),
         404, "unknown model");
  expect(c.Get("/v2/models/other"), 404, "unknown model metadata");
  expect(c.Post("/v2/models/wrist/infer", "{\"inputs\": [", "application/json"), 400,
         "malformed JSON");
  {
    // A slow client: headers never finished. The server drops it after --read-timeout (1 s here).
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    const std::string partial = "POST /v1/predict HTTP/1.1\r\nHost: x\r\n";
    ASSERT_EQ(::send(fd, partial.data(), partial.size(), 0), static_cast<ssize_t>(partial.size()));
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[256];
    const auto t0 = std::chrono::steady_clock::now();
    const ssize_t n =
        ::recv(fd, buf, sizeof(buf), 0);  // 0 (closed) or an error response, within the timeout
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_LE(waited, 4.0) << "the server kept a slow client for " << waited << " s";
    EXPECT_GE(n, 0);
    ::close(fd);
  }
  // Still healthy, and still right.
  auto r = c.Post("/v1/predict", sample(kPng), "application/octet-stream");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_NEAR(json::parse(r->body)["probability"].get<double>(), predicted(kPng), 1e-6);
  r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("wristssl_requests_total{endpoint=\"/v1/predict\",status=\"400\"}"),
            std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("wristssl_batch_size_bucket"), std::string::npos);
}

}  // namespace
}  // namespace wristssl::serve

namespace wristssl::serve {
namespace {

// A full queue answers 503 with Retry-After instead of growing: one worker, room for one waiting
// image, and 16 requests at once.
TEST(ServeQueue, AFullQueueAnswers503WithRetryAfter) {
  const std::string dir = testing::temp_dir("serve-queue");
  // 512 px: each forward pass (about 0.1 s here) outlasts the arrival of all 16 requests.
  models::Bundle b = train::untrained_bundle(512, 512, 3, "wrist");
  models::write_bundle(b, dir + "/model.wristssl");
  ServeOptions o;
  o.model = dir + "/model.wristssl";
  o.port = 0;
  o.max_batch = 1;
  o.max_delay_ms = 0;
  o.queue = 1;
  o.threads = 2;
  o.log = false;
  Server server(o);
  const int port = server.start();
  const std::string png = read_bytes(
      testing::repo_path("samples/grazpedwri-dx/images/0004_0542630449_01_WRI-L1_M003.png"));
  std::vector<std::thread> clients;
  std::mutex mu;
  std::map<int, int> statuses;
  bool retry_after = true, json_errors = true;
  std::string client_errors;
  std::atomic<int> ready{0};
  for (int k = 0; k < 16; ++k) {
    clients.emplace_back([&] {
      httplib::Client c("127.0.0.1", port);
      // All 16 send at once.
      ++ready;
      while (ready < 16) std::this_thread::yield();
      c.set_read_timeout(60, 0);
      const auto r = c.Post("/v1/predict", png, "application/octet-stream");
      std::lock_guard<std::mutex> lock(mu);
      const int status = r ? r->status : -1;
      ++statuses[status];
      if (!r) client_errors += " " + httplib::to_string(r.error());
      if (status == 503) {
        retry_after = retry_after && r->get_header_value("Retry-After") == "1";
        json_errors = json_errors && json::parse(r->body).contains("error");
      }
    });
  }
  for (auto& t : clients) t.join();
  std::string seen;
  for (const auto& [k, v] : statuses) seen += " " + std::to_string(k) + " x " + std::to_string(v);
  EXPECT_GE(statuses[503], 1) << "16 requests at once into a queue of 1 were all taken:" << seen;
  EXPECT_GE(statuses[200], 1);
  EXPECT_EQ(statuses[200] + statuses[503], 16)
      << "only 200 and 503 are expected:" << seen << "; client errors:" << client_errors;
  EXPECT_TRUE(retry_after);
  EXPECT_TRUE(json_errors);
  // Once the burst is over, the server takes work again.
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);
  const auto r = c.Post("/v1/predict", png, "application/octet-stream");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  std::printf("statuses: 200 x %d, 503 x %d\n", statuses[200], statuses[503]);
}

}  // namespace
}  // namespace wristssl::serve
