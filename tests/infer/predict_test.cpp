#include "wristssl/infer/predict.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_paths.h"
#include "wristssl/data/dataset.h"
#include "wristssl/data/preprocess.h"
#include "wristssl/infer/predictor.h"
#include "wristssl/io/read_image.h"
#include "wristssl/metrics/calibration.h"
#include "wristssl/metrics/localisation.h"
#include "wristssl/models/box_decoding.h"
#include "wristssl/models/classifier.h"
#include "wristssl/models/ensemble.h"
#include "wristssl/study/evaluate.h"
#include "wristssl/train/run_bundle.h"
#include "wristssl/util/csv.h"
#include "wristssl/util/fs.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace wristssl::infer {
namespace {

std::string read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A copy of a sample DICOM with Modality CR changed to CT (same length), for the modality warning.
void write_ct_copy(const std::string& src, const std::string& dst) {
  std::string b = read_bytes(src);
  const std::string tag("\x08\x00\x60\x00", 4);
  const size_t at = b.find(tag);
  ASSERT_NE(at, std::string::npos);
  const size_t cr = b.find("CR", at);
  ASSERT_LT(cr - at, 12u);
  b[cr + 1] = 'T';
  util::atomic_write(dst, b);
}

class Predict : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::temp_dir("predict");
    models::Bundle b = train::untrained_bundle(64, 48, 7, "predict-test");
    bundle_ = dir_ + "/model.wristssl";
    models::write_bundle(b, bundle_);
    in_ = dir_ + "/in";
    fs::create_directories(in_ + "/sub");
    const auto png = data::list_image_files(testing::repo_path("samples/grazpedwri-dx/images"));
    fs::copy_file(png.at(0), in_ + "/a.png");
    fs::copy_file(png.at(1), in_ + "/sub/b.png");
    const auto jpg =
        data::list_image_files(testing::repo_path("samples/fracatlas/images/Fractured"));
    fs::copy_file(jpg.at(0), in_ + "/c.jpg");
    fs::copy_file(testing::repo_path("samples/dicom/CR-MONO1-10-chest.dcm"), in_ + "/d.dcm");
    write_ct_copy(testing::repo_path("samples/dicom/CR-MONO1-10-chest.dcm"), in_ + "/e_ct.dcm");
    util::atomic_write(in_ + "/f_corrupt.png",
                       std::string("\x89PNG\r\n\x1a\nthis is not a png", 24));
    const std::string j = read_bytes(jpg.at(1));
    util::atomic_write(in_ + "/g_truncated.jpg", j.substr(0, j.size() / 2));
  }
  std::string dir_, bundle_, in_;
};

TEST_F(Predict, ScoresEveryReadableFileAndNamesTheRest) {
  PredictOptions o;
  o.model = bundle_;
  o.inputs = {in_};
  o.csv = dir_ + "/out.csv";
  o.json = dir_ + "/out.json";
  o.heatmaps = dir_ + "/heat";
  o.batch_size = 3;  // batches that split the folder unevenly
  o.threads = 2;
  std::ostringstream out;
  const std::vector<PredictRow> rows = run_predict(o, out);
  ASSERT_EQ(rows.size(), 7u);
  const util::CsvTable t = util::read_csv(o.csv);
  ASSERT_EQ(t.header,
            (std::vector<std::string>{"path", "probability", "decision", "error", "boxes"}));
  ASSERT_EQ(t.rows.size(), 7u);
  std::map<std::string, std::vector<std::string>> by_name;
  for (const auto& r : t.rows) by_name[fs::path(r[0]).filename().string()] = r;
  for (const char* good : {"a.png", "b.png", "c.jpg", "d.dcm", "e_ct.dcm"}) {
    const auto& r = by_name.at(good);
    EXPECT_TRUE(r[3].empty()) << good << ": " << r[3];
    const double p = std::stod(r[1]);
    EXPECT_GE(p, 0.0);
    EXPECT_LE(p, 1.0);
    EXPECT_TRUE(r[2] == "fracture" || r[2] == "no_fracture" || r[2] == "refer") << r[2];
    EXPECT_TRUE(fs::exists(dir_ + "/heat/" + fs::path(good).stem().string() + ".gradcam.png"))
        << good;
  }
  for (const char* bad : {"f_corrupt.png", "g_truncated.jpg"}) {
    const auto& r = by_name.at(bad);
    EXPECT_TRUE(r[1].empty() && r[2].empty()) << bad;
    EXPECT_FALSE(r[3].empty()) << bad;
  }
  EXPECT_NE(by_name.at("g_truncated.jpg")[3].find("truncated"), std::string::npos);
  // Standard output stays empty when a file is asked for.
  EXPECT_TRUE(out.str().empty());
  // The JSON names the model and carries the modality warning for the CT file only.
  const json j = json::parse(util::read_text(o.json));
  EXPECT_EQ(j["model"]["sha256"].get<std::string>().size(), 64u);
  for (const auto& r : j["images"]) {
    const bool ct = r["path"].get<std::string>().find("e_ct.dcm") != std::string::npos;
    EXPECT_EQ(r.contains("warning"), ct) << r.dump();
  }
  // The heatmap keeps the radiograph's aspect (plus the colour bar) and is a real PNG.
  const io::Image h = io::read_image(dir_ + "/heat/c.gradcam.png");
  const io::Image c = io::read_image(in_ + "/c.jpg");
  EXPECT_EQ(h.info.height,
            std::min(c.info.height, 512 * c.info.height / std::max(c.info.width, c.info.height)));

  // Independently of predict's batching: the native network on the same preprocessed input, and the
  // calibrated probability by hand.
  const models::Bundle b = models::read_bundle(bundle_);
  models::Classifier net = models::classifier_from_bundle(b);
  const auto& pre = b.manifest["preprocessing"];
  const data::Preprocessing p{64, 48, false, pre["normalization"]["mean"].get<float>(),
                              pre["normalization"]["std"].get<float>()};
  const std::vector<float> x = data::network_input(io::read_image(in_ + "/a.png"), p);
  torch::NoGradGuard no_grad;
  const torch::Tensor logits =
      net->forward(torch::from_blob(const_cast<float*>(x.data()), {1, 1, 48, 48}).clone());
  const double margin = (logits[0][1] - logits[0][0]).item<double>();
  EXPECT_NEAR(std::stod(by_name.at("a.png")[1]), metrics::sigmoid(margin / 1.5), 2e-6);
}

// A file name that is not UTF-8 (Latin-1, as an old share may hold) is scored, and the JSON names
// it with U+FFFD for the odd byte instead of failing the whole run at the end.
TEST_F(Predict, AFileNameThatIsNotUtf8DoesNotStopTheJson) {
  const std::string odd = dir_ + "/odd";
  fs::create_directories(odd);
  fs::copy_file(in_ + "/a.png", odd + "/caf\xe9.png");
  PredictOptions o;
  o.model = bundle_;
  o.inputs = {odd};
  o.csv = dir_ + "/odd.csv";
  o.json = dir_ + "/odd.json";
  o.threads = 2;
  std::ostringstream out;
  const std::vector<PredictRow> rows = run_predict(o, out);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0].ok);
  const json j = json::parse(util::read_text(o.json));
  ASSERT_EQ(j["images"].size(), 1u);
  const std::string path = j["images"][0]["path"];
  EXPECT_NE(path.find("caf\xef\xbf\xbd.png"), std::string::npos) << path;
  EXPECT_EQ(j["images"][0]["decision"], rows[0].decision);
}

TEST_F(Predict, BoxesAreDecodedFromTheModelsOwnLogOddsMap) {
  // A 128 px input: a 4 x 4 map of per-location log-odds.
  models::Bundle b = train::untrained_bundle(128, 128, 11, "boxes-test");
  b.manifest["decision"]["threshold"] = 0.2;  // so that some images are called fracture or refer
  b.manifest["decision"]["refer_band"]["lo"] = 0.1;
  b.manifest["decision"]["refer_band"]["hi"] = 0.3;
  b.manifest["localisation"] = {{"show", true}};  // untrained, so not by its training
  const std::string path = dir_ + "/boxes.wristssl";
  models::write_bundle(b, path);
  PredictOptions o;
  o.model = path;
  o.inputs = {in_ + "/a.png", in_ + "/c.jpg", in_ + "/d.dcm"};
  o.json = dir_ + "/boxes.json";
  o.csv = dir_ + "/boxes.csv";
  o.threads = 2;
  std::ostringstream out;
  run_predict(o, out);
  const json j = json::parse(util::read_text(o.json));
  EXPECT_EQ(j["model"]["localisation"]["drop"].get<double>(), 0.25);
  EXPECT_EQ(j["model"]["localisation"]["show"].get<bool>(), true);
  const util::CsvTable t = util::read_csv(o.csv);

  const models::Bundle rb = models::read_bundle(path);
  models::Classifier net = models::classifier_from_bundle(rb);
  const models::DecisionRule rule = models::DecisionRule::from_json(rb.manifest["decision"]);
  const auto& pre = rb.manifest["preprocessing"];
  const data::Preprocessing p{128, 128, false, pre["normalization"]["mean"].get<float>(),
                              pre["normalization"]["std"].get<float>()};
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    const io::Image img = io::read_image(o.inputs[i]);
    const std::vector<float> x = data::network_input(img, p);
    const torch::Tensor a = net->backbone->feature_map(
        torch::from_blob(const_cast<float*>(x.data()), {1, 1, 128, 128}).clone());
    const torch::Tensor m = net->margin_map(a)[0].contiguous();  // [4, 4]
    ASSERT_EQ(m.sizes(), (c10::IntArrayRef{4, 4}));
    // Average pooling: the map's mean is the image's margin (the class activation map).
    const json& row = j["images"][i];
    EXPECT_NEAR(m.mean().item<double>(), row["margin"].get<double>(), 1e-4) << o.inputs[i];
    // The boxes, decoded here from the eager network's map, in the image's pixels.
    std::vector<data::ScoredBox> want = models::decode_boxes(
        std::vector<float>(m.data_ptr<float>(), m.data_ptr<float>() + 16), 4, 4);
    const json& got = row["boxes"];
    ASSERT_EQ(got.size(), want.size()) << o.inputs[i];
    ASSERT_FALSE(want.empty());
    int shown = 0;
    for (size_t k = 0; k < want.size(); ++k) {
      const auto px = models::box_pixels(want[k].box, img.info.width, img.info.height);
      EXPECT_NEAR(got[k]["x0"].get<int>(), px[0], 1) << o.inputs[i] << " box " << k;
      EXPECT_NEAR(got[k]["y1"].get<int>(), px[3], 1) << o.inputs[i] << " box " << k;
      const double prob = rule.probability(want[k].score);
      EXPECT_NEAR(got[k]["probability"].get<double>(), prob, 1e-5);
      EXPECT_EQ(got[k]["band"].get<std::string>(), rule.decide(prob));
      // Shown: none on a no_fracture image; the strongest and any other in a band otherwise.
      const bool expect_shown = row["decision"] != "no_fracture" &&
                                (k == 0 || std::string(rule.decide(prob)) != "no_fracture");
      EXPECT_EQ(got[k]["shown"].get<bool>(), expect_shown) << o.inputs[i] << " box " << k;
      shown += expect_shown;
      // A box's peak is at least the map's mean: never a weaker probability than the image's.
      if (k == 0) {
        EXPECT_GE(got[k]["probability"].get<double>(), row["probability"].get<double>() - 1e-9);
      }
    }
    EXPECT_EQ(t.rows[i][4], std::to_string(shown)) << o.inputs[i];
  }
}

TEST_F(Predict, MatchesExternalEvaluationOfTheSameFiles) {
  // A labelled manifest over the readable files: evaluate --model must give predict's
  // probabilities.
  util::atomic_write(
      dir_ + "/labels.csv",
      "path,label\nin/a.png,1\nin/sub/b.png,0\nin/c.jpg,1\nin/d.dcm,0\nin/g_truncated.jpg,1\n");
  study::EvaluateOptions eo;
  eo.model = bundle_;
  eo.data.data = dir_ + "/labels.csv";
  eo.out = dir_ + "/eval";
  eo.cache_dir = dir_ + "/cache";
  eo.bootstrap = 50;
  eo.threads = 2;
  const json m = study::run_evaluate(eo);
  EXPECT_EQ(m["n"], 4);
  EXPECT_EQ(m["unreadable_skipped"], 1);
  EXPECT_EQ(m["evaluation"], "external evaluation");
  const models::Bundle b = models::read_bundle(bundle_);
  EXPECT_DOUBLE_EQ(m["threshold"].get<double>(), b.manifest["decision"]["threshold"].get<double>())
      << "the threshold is the bundle's, never re-tuned on the external data";
  EXPECT_TRUE(fs::exists(dir_ + "/eval/report.html"));
  const util::CsvTable scores = util::read_csv(dir_ + "/eval/scores_external.csv");
  PredictOptions o;
  o.model = bundle_;
  o.inputs = {in_ + "/a.png", in_ + "/sub/b.png", in_ + "/c.jpg", in_ + "/d.dcm"};
  o.threads = 2;
  std::ostringstream out;
  const auto rows = run_predict(o, out);
  ASSERT_EQ(scores.rows.size(), 4u);
  for (const auto& r : scores.rows) {
    const std::string name = fs::path(r[0]).filename().string();
    bool found = false;
    for (const auto& pr : rows) {
      if (fs::path(pr.path).filename().string() == name) {
        EXPECT_NEAR(std::stod(r[scores.column("score")]), pr.probability, 1e-5) << name;
        EXPECT_EQ(r[scores.column("decision")], pr.decision) << name;
        found = true;
      }
    }
    EXPECT_TRUE(found) << name;
  }
  // Standard output holds the CSV when no file is asked for.
  EXPECT_EQ(out.str().rfind("path,probability,decision,error,boxes\n", 0), 0u);

  // With annotated boxes: evaluate measures the localisation on the same boxes predict gives.
  fs::create_directories(dir_ + "/yolo");
  util::atomic_write(dir_ + "/yolo/a.txt", "0 0.5 0.5 0.2 0.2\n");
  util::atomic_write(dir_ + "/yolo/c.txt", "0 0.3 0.6 0.1 0.1\nnot a box\n");  // one malformed line
  util::atomic_write(dir_ + "/yolo/b.txt", "");
  eo.data.boxes = dir_ + "/yolo";
  eo.out = dir_ + "/eval-boxes";
  const json mb = study::run_evaluate(eo);
  const json& l = mb["localisation"];
  EXPECT_EQ(l["images"], 4);  // d.dcm has no file but is labelled no fracture: known, no box
  EXPECT_EQ(l["fractured_images"], 2);
  EXPECT_EQ(l["true_boxes"], 2);
  EXPECT_EQ(l["malformed_lines"], 1);
  std::vector<std::string> paths;
  const std::vector<metrics::LocalisedImage> images =
      metrics::read_boxes_csv({dir_ + "/eval-boxes/boxes_external.csv"}, &paths);
  ASSERT_EQ(images.size(), 4u);
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string name = fs::path(paths[i]).filename().string();
    for (const auto& pr : rows) {
      if (fs::path(pr.path).filename().string() != name) continue;
      ASSERT_EQ(images[i].boxes.size(), pr.boxes.size()) << name;
      for (size_t k = 0; k < pr.boxes.size(); ++k) {
        EXPECT_NEAR(images[i].boxes[k].score, pr.boxes[k].score, 1e-5) << name;
        EXPECT_NEAR(images[i].boxes[k].box.x0, pr.boxes[k].box.x0, 1e-6) << name;
        EXPECT_NEAR(images[i].boxes[k].box.y1, pr.boxes[k].box.y1, 1e-6) << name;
      }
      EXPECT_TRUE(images[i].has_point);
      EXPECT_EQ(images[i].truth.size(), name == "a.png" || name == "c.jpg" ? 1u : 0u) << name;
    }
  }
  // The figures recomputed from the CSV are evaluate's.
  EXPECT_DOUBLE_EQ(metrics::hit_rate(images), l["hit_rate"]["value"].get<double>());
  EXPECT_DOUBLE_EQ(metrics::average_precision(images),
                   l["average_precision"]["value"].get<double>());
  EXPECT_NE(util::read_text(dir_ + "/eval-boxes/report.html").find("Where the fracture is"),
            std::string::npos);
}

TEST_F(Predict, AnEnsembleScoresTheMeanOfItsMembersEverywhere) {
  // Three members with different weights: predict with the ensemble must give the mean of the
  // members' own calibrated probabilities, and evaluate --model the same scores.
  std::vector<std::string> paths{bundle_};
  for (uint64_t seed : {8, 9}) {
    models::Bundle m = train::untrained_bundle(64, 48, seed, "member" + std::to_string(seed));
    paths.push_back(dir_ + "/member" + std::to_string(seed) + ".wristssl");
    models::write_bundle(m, paths.back());
  }
  train::BundleRequest req;
  req.members = paths;
  req.out = dir_ + "/ensemble.wristssl";
  const models::Bundle e = train::write_requested_bundle(req);
  EXPECT_EQ(e.manifest["members"].size(), 3u);
  EXPECT_EQ(e.manifest["name"], "predict-test-ensemble");
  const std::vector<std::string> files{in_ + "/a.png", in_ + "/sub/b.png", in_ + "/c.jpg",
                                       in_ + "/d.dcm"};
  auto scores = [&](const std::string& model, bool heat) {
    PredictOptions o;
    o.model = model;
    o.inputs = files;
    o.threads = 2;
    if (heat) o.heatmaps = dir_ + "/heat-ensemble";
    std::ostringstream out;
    std::vector<double> p;
    for (const PredictRow& r : run_predict(o, out)) p.push_back(r.probability);
    return p;
  };
  const std::vector<double> got = scores(req.out, true);
  std::vector<double> mean(files.size(), 0.0);
  for (const std::string& m : paths) {
    const std::vector<double> p = scores(m, false);
    for (size_t i = 0; i < p.size(); ++i) mean[i] += p[i] / 3.0;
  }
  ASSERT_EQ(got.size(), files.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], mean[i], 1e-5) << files[i];
  EXPECT_TRUE(fs::exists(dir_ + "/heat-ensemble/a.gradcam.png"));
  // The members differ, so the check above could fail.
  EXPECT_GT(std::fabs(scores(paths[1], false)[0] - scores(paths[2], false)[0]), 1e-4);

  util::atomic_write(dir_ + "/labels.csv",
                     "path,label\nin/a.png,1\nin/sub/b.png,0\nin/c.jpg,1\nin/d.dcm,0\n");
  study::EvaluateOptions eo;
  eo.model = req.out;
  eo.data.data = dir_ + "/labels.csv";
  eo.out = dir_ + "/eval-ensemble";
  eo.cache_dir = dir_ + "/cache";
  eo.bootstrap = 50;
  eo.threads = 2;
  eo.gallery = 2;  // Grad-CAM of the ensemble in the report
  study::run_evaluate(eo);
  const util::CsvTable t = util::read_csv(dir_ + "/eval-ensemble/scores_external.csv");
  ASSERT_EQ(t.rows.size(), files.size());
  for (const auto& r : t.rows) {
    const std::string name = fs::path(r[0]).filename().string();
    for (size_t i = 0; i < files.size(); ++i) {
      if (fs::path(files[i]).filename().string() == name) {
        EXPECT_NEAR(std::stod(r[t.column("score")]), got[i], 1e-5) << name;
      }
    }
  }
}

TEST_F(Predict, RefusesATamperedBundleAndAnEmptyFolder) {
  std::string b = read_bytes(bundle_);
  b[b.size() / 3] ^= 0x10;
  util::atomic_write(dir_ + "/tampered.wristssl", b);
  PredictOptions o;
  o.model = dir_ + "/tampered.wristssl";
  o.inputs = {in_};
  std::ostringstream out;
  try {
    run_predict(o, out);
    FAIL() << "a tampered bundle was used";
  } catch (const models::BundleError& e) {
    EXPECT_EQ(e.check(), "checksum");
    EXPECT_NE(std::string(e.what()).find("tampered.wristssl"), std::string::npos);
  }
  fs::create_directories(dir_ + "/empty");
  o.model = bundle_;
  o.inputs = {dir_ + "/empty"};
  try {
    run_predict(o, out);
    FAIL() << "an empty folder was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no image files"), std::string::npos) << e.what();
  }
  o.inputs = {dir_ + "/missing.png"};
  EXPECT_THROW(run_predict(o, out), std::runtime_error);
}

}  // namespace
}  // namespace wristssl::infer
