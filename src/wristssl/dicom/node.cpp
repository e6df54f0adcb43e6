#include "wristssl/dicom/node.h"

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmnet/assoc.h>
#include <dcmtk/dcmnet/diutil.h>
#include <dcmtk/dcmnet/scp.h>
#include <dcmtk/dcmnet/scu.h>
#include <dcmtk/dcmtls/tlslayer.h>
#include <dcmtk/oflog/appender.h>
#include <dcmtk/oflog/logger.h>
#include <dcmtk/oflog/oflog.h>
#include <dcmtk/oflog/spi/logevent.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "wristssl/io/image.h"
#include "wristssl/util/audit.h"
#include "wristssl/util/fs.h"

namespace wristssl::dicom {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr Uint16 kSuccess = 0x0000;
constexpr Uint16 kOutOfResources = 0xA700;  // Refused: out of resources (the sender may retry)
constexpr Uint16 kCannotUnderstand = 0xC000;
constexpr Uint16 kNoStatus = 0xFFFF;  // no DIMSE status: the transfer or the request broke first

// A DIMSE status as the audit trail writes it: "0x0000", or "none".
std::string status_text(Uint16 status) {
  if (status == kNoStatus) return "none";
  char hex[8];
  std::snprintf(hex, sizeof(hex), "0x%04X", status);
  return hex;
}

void log(const char* format, ...) {
  char when[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
  std::fprintf(stderr, "listen: %s ", when);
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

// In the order the node prefers them: a sender that proposes its stored (compressed) syntax next to an
// uncompressed one sends the data as stored, so nothing is transcoded on either side.
OFList<OFString> transfer_syntaxes() {
  OFList<OFString> ts;
  for (const char* uid :
       {UID_JPEG2000LosslessOnlyTransferSyntax, UID_JPEG2000TransferSyntax, UID_JPEGLSLosslessTransferSyntax,
        UID_JPEGLSLossyTransferSyntax, UID_JPEGProcess14SV1TransferSyntax, UID_JPEGProcess14TransferSyntax,
        UID_RLELosslessTransferSyntax, UID_JPEGProcess1TransferSyntax, UID_JPEGProcess2_4TransferSyntax,
        UID_LittleEndianExplicitTransferSyntax, UID_LittleEndianImplicitTransferSyntax,
        UID_BigEndianExplicitTransferSyntax})
    ts.push_back(uid);
  return ts;
}

// ---- Why a peer rejected an association: DcmSCU only logs it (at debug level). Its network
// layer's log goes to an appender that keeps that one message, per thread, and prints nothing.

thread_local std::string dcmnet_error;

class KeepErrors : public dcmtk::log4cplus::Appender {
 public:
  ~KeepErrors() override { destructorImpl(); }
  void close() override {}

 protected:
  void append(const dcmtk::log4cplus::spi::InternalLoggingEvent& event) override {
    std::string m = event.getMessage().c_str();
    if (m.rfind("Association Rejected", 0) != 0) return;
    std::replace(m.begin(), m.end(), '\n', ' ');
    dcmnet_error = m;
  }
};

void keep_dcmnet_errors() {
  static std::once_flag once;
  std::call_once(once, [] {
    dcmtk::log4cplus::Logger net = dcmtk::log4cplus::Logger::getInstance("dcmtk.dcmnet");
    net.setLogLevel(dcmtk::log4cplus::DEBUG_LOG_LEVEL);  // DcmSCU says why at DEBUG level
    net.setAdditivity(false);
    net.addAppender(dcmtk::log4cplus::SharedAppenderPtr(new KeepErrors));
  });
}

// ---- DICOM TLS

// Where TLS refusals are reported (the node running in this process), with the peer's address.
std::mutex tls_report_mutex;
std::function<void(const std::string& peer, const std::string& what)> tls_report;

std::string socket_peer(int fd) {
  sockaddr_storage a{};
  socklen_t n = sizeof(a);
  char host[NI_MAXHOST];
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&a), &n) != 0 ||
      getnameinfo(reinterpret_cast<sockaddr*>(&a), n, host, sizeof(host), nullptr, 0,
                  NI_NUMERICHOST) != 0)
    return "?";
  return host;
}

void report_tls(const SSL* ssl, const std::string& what) {
  const std::string peer = ssl ? socket_peer(SSL_get_fd(ssl)) : "?";
  std::lock_guard<std::mutex> lock(tls_report_mutex);
  if (tls_report) tls_report(peer, what);
}

// OpenSSL's verdict on each certificate of the peer's chain: a refusal names the reason and the
// subject.
int verify_peer(int ok, X509_STORE_CTX* ctx) {
  if (!ok) {
    char subject[256] = "?";
    if (X509* cert = X509_STORE_CTX_get_current_cert(ctx))
      X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
    const auto* ssl = static_cast<const SSL*>(
        X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
    report_tls(ssl, std::string("its certificate was refused: ") +
                        X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)) + " (" +
                        subject + ")");
  }
  return ok;
}

// A handshake that fails on our side (no certificate, not TLS at all, ...) or that the peer ends
// with an alert.
void tls_info(const SSL* ssl, int where, int ret) {
  if ((where & SSL_CB_ALERT) && (where & SSL_CB_READ) && (ret & 0xff) != SSL_AD_CLOSE_NOTIFY) {
    report_tls(ssl, std::string("it ended the TLS handshake: ") + SSL_alert_desc_string_long(ret) +
                        " (it does not accept this node's certificate?)");
  } else if ((where & SSL_CB_EXIT) && ret <= 0 && ERR_peek_last_error() != 0) {
    const unsigned long e = ERR_peek_last_error();
    const char* why = e ? ERR_reason_error_string(e) : nullptr;
    report_tls(ssl, std::string("TLS handshake failed: ") + (why ? why : "no reason given"));
  }
}

std::unique_ptr<DcmTLSTransportLayer> make_tls(T_ASC_NetworkRole role, const NodeOptions& o) {
  auto t = std::make_unique<DcmTLSTransportLayer>(role, nullptr, OFTrue);
  auto check = [](const OFCondition& c, const std::string& what) {
    if (c.bad()) throw std::invalid_argument(what + ": " + c.text());
  };
  check(t->setTLSProfile(TSP_Profile_BCP195_ND), "TLS profile BCP 195");
  check(t->activateCipherSuites(), "TLS cipher suites");
  check(t->setPrivateKeyFile(o.tls_key.c_str(), DCF_Filetype_PEM), "--tls-key " + o.tls_key);
  check(t->setCertificateFile(o.tls_cert.c_str(), DCF_Filetype_PEM), "--tls-cert " + o.tls_cert);
  if (!t->checkPrivateKeyMatchesCertificate())
    throw std::invalid_argument("--tls-key " + o.tls_key + " is not the key of --tls-cert " +
                                o.tls_cert);
  check(fs::is_directory(o.tls_ca)
            ? t->addTrustedCertificateDir(o.tls_ca.c_str(), DCF_Filetype_PEM)
            : t->addTrustedCertificateFile(o.tls_ca.c_str(), DCF_Filetype_PEM),
        "--tls-ca " + o.tls_ca);
  t->setCertificateVerification(role == NET_ACCEPTOR && !o.tls_require_peer_certificate
                                    ? DCV_checkCertificate
                                    : DCV_requireCertificate);
  SSL_CTX* ctx = t->getNativeHandle();
  SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), verify_peer);
  SSL_CTX_set_info_callback(ctx, tls_info);
  return t;
}

// The link to --forward (DcmSCU keeps its TLS set-up protected).
class ForwardSCU : public DcmSCU {
 public:
  using DcmSCU::useSecureConnection;
};

class Node;

class NodeSCP : public DcmSCP {
 public:
  explicit NodeSCP(Node& node) : node_(node) {}

  OFCondition receive_into(T_DIMSE_C_StoreRQ& req, T_ASC_PresentationContextID pres,
                           const std::string& file) {
    return receiveSTORERequest(req, pres, file.c_str());
  }
  OFCondition respond(T_ASC_PresentationContextID pres, T_DIMSE_C_StoreRQ& req, Uint16 status) {
    return sendSTOREResponse(pres, req, status);
  }

 protected:
  OFCondition handleIncomingCommand(T_DIMSE_Message* msg, const DcmPresentationContextInfo& info) override;
  void notifyAssociationRequest(const T_ASC_Parameters& params, DcmSCPActionType& action) override;
  OFBool checkCallingAETitleAccepted(const OFString& aet) override;
  void notifyAssociationTermination() override;
  void notifyAbortRequest() override;
  OFBool stopAfterConnectionTimeout() override;
  OFBool stopAfterCurrentAssociation() override;

 private:
  Node& node_;
};

class Node {
 public:
  Node(const NodeOptions& o, const ModelIdentity& model, const Scorer& scorer, const std::atomic<bool>& stop)
      : o_(o), model_(model), scorer_(scorer), external_stop_(stop) {
    if (!o.forward.empty()) destination_ = parse_destination(o.forward);
    for (const std::string& a : o.allow) allow_.push_back(resolve_peer(parse_peer(a)));
    if (!o.peers_file.empty()) {
      for (const std::string& a : read_peers_file(o.peers_file))
        allow_.push_back(resolve_peer(parse_peer(a)));
    }
    const fs::path state(o.state_dir);
    incoming_ = state / "incoming";
    results_ = state / "results";
    outbox_ = state / "outbox";
    failed_ = state / "failed";
    for (const fs::path& d : {incoming_, results_, outbox_, failed_}) fs::create_directories(d);
    const int tls_given = !o.tls_key.empty() + !o.tls_cert.empty() + !o.tls_ca.empty();
    if (tls_given != 0 && tls_given != 3)
      throw std::invalid_argument("DICOM TLS needs all of --tls-key, --tls-cert and --tls-ca");
    if (tls_given == 3) {
      tls_in_ = make_tls(NET_ACCEPTOR, o);
      if (!destination_.host.empty()) tls_out_ = make_tls(NET_REQUESTOR, o);
    }
    audit_ = std::make_unique<util::AuditTrail>(util::AuditOptions{
        o.audit.empty() ? (state / "audit.jsonl").string() : o.audit, o.audit_max_mb << 20, 10});
    std::lock_guard<std::mutex> lock(tls_report_mutex);
    tls_report = [this](const std::string& peer, const std::string& what) {
      log("TLS: peer %s: %s", peer.c_str(), what.c_str());
      audit({{"event", "tls_refused"}, {"peer", peer}, {"reason", what}});
    };
  }
  ~Node() {
    std::lock_guard<std::mutex> lock(tls_report_mutex);
    tls_report = nullptr;
  }

  bool stopping() const { return stop_ || external_stop_; }

  // One audit record, with who this node is.
  void audit(json record) {
    record["service"] = "listen";
    record["node"] = o_.aet;
    audit_->append(record);
  }

  // Whether the caller may send; a refusal is logged with its AE title and address.
  bool admit(const std::string& calling, const std::string& address) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      peer_ = address;
    }
    if (peer_allowed(allow_, calling, address)) return true;
    const char* why =
        allow_.empty() ? "only loopback peers may send without --allow" : "not in --allow";
    log("refused an association from AE title '%s' at %s: %s (calling AE title not recognised)",
        calling.c_str(), address.c_str(), why);
    audit({{"event", "association_refused"},
           {"peer", address},
           {"calling_aet", calling},
           {"reason", std::string(why) + " (calling AE title not recognised)"}});
    return false;
  }

  int run() {
    // Instances a previous run received but did not score; half-received files are dropped. One
    // that the node was scoring when it stopped kMaxAttempts times (a decoder that crashes on it,
    // say) is set aside in failed/, so that it cannot stop the node again and again.
    // A kill can also leave the temp file of an atomic write (an attempt count, a result) or of a
    // copy into outbox/.
    for (const fs::path& d : {incoming_, results_, outbox_})
      util::remove_atomic_write_leftovers(d.string());
    remove_outbox_copies_in_progress();
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(incoming_)) {
      if (e.path().extension() == ".part") {
        fs::remove(e.path());
      } else if (e.path().extension() == ".dcm") {
        found.push_back(e.path());
      } else if (e.path().extension() == ".attempts" &&
                 !fs::exists(e.path().parent_path() / e.path().stem())) {
        fs::remove(e.path());
      }
    }
    std::sort(found.begin(), found.end());
    found.erase(std::remove_if(found.begin(), found.end(),
                               [this](const fs::path& p) { return set_aside(p); }),
                found.end());
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const fs::path& p : found) enqueue_locked(p.string());
    }
    if (!found.empty()) log("%zu instances received before a restart are queued again", found.size());
    if (allow_.empty()) {
      log("warning: no --allow: accepting associations from loopback addresses only; give --allow "
          "AET[@HOST] for each modality or router that may send");
    } else {
      std::string list;
      for (const Peer& p : allow_)
        list += (list.empty() ? "" : ", ") + p.aet + (p.host.empty() ? "" : "@" + p.host);
      log("accepting associations from %s", list.c_str());
    }

    NodeSCP scp(*this);
    if (tls_in_) scp.getConfig().setTransportLayer(tls_in_.get());
    scp.setAETitle(o_.aet.c_str());
    scp.setPort(static_cast<Uint16>(o_.port));
    scp.setConnectionBlockingMode(DUL_NOBLOCK);
    scp.setConnectionTimeout(1);
    scp.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
    scp.setDIMSETimeout(static_cast<Uint32>(o_.timeout_s));
    scp.setACSETimeout(static_cast<Uint32>(o_.timeout_s));
    scp.setHostLookupEnabled(OFFalse);
    const OFList<OFString> ts = transfer_syntaxes();
    for (const char* sop : {UID_ComputedRadiographyImageStorage, UID_DigitalXRayImageStorageForPresentation,
                            UID_DigitalXRayImageStorageForProcessing, UID_SecondaryCaptureImageStorage}) {
      if (scp.addPresentationContext(sop, ts).bad()) throw std::runtime_error("cannot configure the node");
    }
    OFList<OFString> echo_ts;
    echo_ts.push_back(UID_LittleEndianImplicitTransferSyntax);
    echo_ts.push_back(UID_LittleEndianExplicitTransferSyntax);
    scp.addPresentationContext(UID_VerificationSOPClass, echo_ts);

    const OFCondition opened = scp.openListenPort();
    if (opened.bad())
      throw std::runtime_error("cannot listen on port " + std::to_string(o_.port) + ": " + opened.text());
    std::thread worker([this] { work(); });
    log("listening as %s on port %d%s; state in %s; audit trail %s; results %s", o_.aet.c_str(),
        o_.port,
        tls_in_ ? (o_.tls_require_peer_certificate
                       ? " (DICOM TLS, peer certificates required)"
                       : " (DICOM TLS, peer certificates checked when given)")
                : "",
        o_.state_dir.c_str(), audit_->path().c_str(),
        destination_.host.empty() ? "kept in results/"
                                  : ("sent to " + destination_.aet + "@" + destination_.host + ":" +
                                     std::to_string(destination_.port))
                                        .c_str());
    const OFCondition c = scp.acceptAssociations();
    const bool requested = stopping();
    stop_ = true;
    cv_.notify_all();
    worker.join();
    if (c.bad() && !requested) log("the network loop ended: %s", c.text());
    size_t left = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      left = queue_.size();
    }
    log("stopped; %d instances scored, %zu waiting in %s", scored_.load(), left, incoming_.c_str());
    return 0;
  }

  // ---- network side (the SCP's thread)

  void association_requested(const std::string& calling) {
    std::lock_guard<std::mutex> lock(mutex_);
    calling_ = calling;
  }

  // Receives one C-STORE: the data set goes to a file bit for bit, then is checked. With less than
  // --min-free left, the data set is read off the network into /dev/null and refused with 0xA700.
  OFCondition store(NodeSCP& scp, T_DIMSE_C_StoreRQ& req, T_ASC_PresentationContextID pres) {
    const std::string tag = instance_tag(req.AffectedSOPInstanceUID);
    std::uint64_t free_mb = 0;
    try {
      free_mb = free_megabytes(incoming_.string());
    } catch (const std::exception& e) {
      log("%s", e.what());
    }
    if (free_mb < o_.min_free_mb) {
      const OFCondition c = scp.receive_into(req, pres, "/dev/null");
      if (c.bad()) return c;
      log("disk nearly full: %llu MB free in %s (--min-free %llu): instance %s refused with "
          "0xA700, the "
          "sender should retry",
          static_cast<unsigned long long>(free_mb), incoming_.c_str(),
          static_cast<unsigned long long>(o_.min_free_mb), tag.c_str());
      received_audit(req.AffectedSOPInstanceUID, "", kOutOfResources,
                     "refused: " + std::to_string(free_mb) + " MB free in " + incoming_.string());
      return scp.respond(pres, req, kOutOfResources);
    }
    const fs::path part = incoming_ / ("receiving-" + std::to_string(++received_counter_) + ".part");
    const OFCondition c = scp.receive_into(req, pres, part.string());
    if (c.bad()) {
      // The sender went away, or this node could not write (then the reason names the folder).
      std::string why = c.text();
      std::replace(why.begin(), why.end(), '\n', ' ');
      try {
        if (free_megabytes(incoming_.string()) == 0)
          why += "; no space left in " + incoming_.string();
      } catch (const std::exception&) {
      }
      std::error_code ec;
      fs::remove(part, ec);
      log("a transfer failed mid-way (%s); nothing of it is kept", why.c_str());
      received_audit(req.AffectedSOPInstanceUID, "", kNoStatus, "transfer failed mid-way: " + why);
      return c;
    }
    return scp.respond(pres, req, check_received(part, req.AffectedSOPInstanceUID));
  }

  void received_audit(const std::string& instance, const std::string& study, Uint16 status,
                      const std::string& outcome) {
    std::string peer, calling;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      peer = peer_;
      calling = calling_;
    }
    audit({{"event", "received"},
           {"peer", peer},
           {"calling_aet", calling},
           {"study", util::audit_hash(study)},
           {"instance", util::audit_hash(instance)},
           {"status", status_text(status)},
           {"outcome", outcome}});
  }

  Uint16 check_received(const fs::path& part, const std::string& request_uid) {
    std::error_code ec;
    const std::string tag = instance_tag(request_uid);
    bool full = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      full = queue_.size() + retry_.size() + this_association_.size() + (busy_ ? 1 : 0) >=
             static_cast<size_t>(o_.queue_capacity);
    }
    if (full) {
      fs::remove(part, ec);
      log("queue full (%d instances): instance %s refused with 0xA700, the sender should retry",
          o_.queue_capacity, tag.c_str());
      received_audit(request_uid, "", kOutOfResources, "refused: queue full");
      return kOutOfResources;
    }
    SourceInstance s;
    try {
      s = SourceInstance::read(part.string());
    } catch (const std::exception& e) {
      fs::remove(part, ec);
      std::string reason = e.what();
      const size_t at = reason.find(": ");  // the message starts with our temporary file's name
      if (at != std::string::npos) reason = reason.substr(at + 2);
      log("instance refused with 0xC000: %s", reason.c_str());
      received_audit(request_uid, "", kCannotUnderstand, "refused: " + reason);
      return kCannotUnderstand;
    }
    const std::string id = instance_tag(s.sop_instance_uid);
    if (is_wristssl_result(s.dataset())) {
      fs::remove(part, ec);
      log("instance %s is a wristssl result: acknowledged, not scored", id.c_str());
      received_audit(s.sop_instance_uid, s.study_uid, kSuccess, "a wristssl result: not scored");
      return kSuccess;
    }
    if (!io::is_radiograph_modality(s.modality)) {
      fs::remove(part, ec);
      log("instance %s has Modality '%s', not a radiograph (CR, DX, RG): acknowledged, not scored", id.c_str(),
          s.modality.c_str());
      received_audit(s.sop_instance_uid, s.study_uid, kSuccess,
                     "Modality " + s.modality + ": not scored");
      return kSuccess;
    }
    if (!s.has_pixel_data) {
      fs::remove(part, ec);
      log("instance %s refused with 0xC000: no pixel data", id.c_str());
      received_audit(s.sop_instance_uid, s.study_uid, kCannotUnderstand, "refused: no pixel data");
      return kCannotUnderstand;
    }
    const fs::path final_path = incoming_ / (util::audit_hash(s.sop_instance_uid) + ".dcm");
    fs::rename(part, final_path, ec);
    if (ec) {
      const std::string why = ec.message();
      fs::remove(part, ec);
      log("instance %s refused with 0xA700: cannot keep it in %s (%s)", id.c_str(),
          incoming_.c_str(), why.c_str());
      received_audit(s.sop_instance_uid, s.study_uid, kOutOfResources,
                     "refused: cannot keep it: " + why);
      return kOutOfResources;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      this_association_.push_back(final_path.string());
      log("received %s instance %s from %s", s.modality.c_str(), id.c_str(), calling_.c_str());
    }
    received_audit(s.sop_instance_uid, s.study_uid, kSuccess,
                   "kept; scored when the association ends");
    return kSuccess;
  }

  // Scoring starts when the association ends (released or aborted: what was fully received is kept).
  void association_ended() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const std::string& p : this_association_) enqueue_locked(p);
    this_association_.clear();
    cv_.notify_all();
  }

 private:
  void enqueue_locked(const std::string& path) {
    if (queued_.insert(path).second) queue_.push_back(path);  // a resend while queued is kept once
  }

  // ---- worker side

  void work() {
    auto last_forward = std::chrono::steady_clock::now() - std::chrono::hours(1);
    while (true) {
      std::string path;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping() || !queue_.empty(); });
        if (stopping()) return;
        // Instances whose results could not be written (a full disk) are tried again after a pause.
        if (!retry_.empty() && std::chrono::steady_clock::now() >= retry_at_) {
          for (const std::string& p : retry_) enqueue_locked(p);
          retry_.clear();
        }
        if (!queue_.empty()) {
          path = queue_.front();
          queue_.pop_front();
          queued_.erase(path);
          busy_ = true;
        }
      }
      if (!path.empty()) {
        process(path);
        {
          std::lock_guard<std::mutex> lock(mutex_);
          busy_ = false;
        }
        last_forward = std::chrono::steady_clock::now() - std::chrono::hours(1);
      }
      if (!destination_.host.empty() && std::chrono::steady_clock::now() - last_forward > std::chrono::seconds(10)) {
        forward_outbox();
        last_forward = std::chrono::steady_clock::now();
      }
      if (o_.max_instances > 0 && scored_ >= o_.max_instances && outbox_empty()) {
        stop_ = true;
        return;
      }
    }
  }

  // How many times the node was scoring an instance when it stopped (PATH.attempts: written before
  // scoring, removed after).
  static int attempts(const fs::path& path) {
    std::ifstream in(path.string() + ".attempts");
    int n = 0;
    return in >> n ? n : 0;
  }

  // Moves an instance file to failed/, its reason beside it (FILE.txt), and drops its attempt
  // count.
  void move_to_failed(const fs::path& path, const std::string& why) {
    std::error_code ec;
    const fs::path to = failed_ / path.filename();
    fs::rename(path, to, ec);
    fs::remove(path.string() + ".attempts", ec);
    std::ofstream(to.string() + ".txt") << why << "\n";
  }

  // Moves an instance that stopped the node kMaxAttempts times to failed/; returns whether it did.
  bool set_aside(const fs::path& path) {
    const int n = attempts(path);
    if (n < kMaxAttempts) return false;
    const std::string why =
        "the node stopped " + std::to_string(n) +
        " times while scoring it (a crash in decoding or scoring?); set aside so that it "
        "cannot stop the node again";
    move_to_failed(path, why);
    log("instance file %s moved to failed/: %s", path.filename().c_str(), why.c_str());
    audit({{"event", "not_scored"},
           {"file", path.filename().string()},
           {"outcome", "moved to failed/: " + why}});
    return true;
  }

  // Scores one instance and writes its results. An instance that cannot be read or scored goes to
  // failed/ with the reason; one whose results cannot be written (a full disk) stays in incoming/
  // and is retried.
  void process(const std::string& path) {
    if (!fs::exists(path)) return;  // replaced and already scored
    std::string id = "?";
    SourceInstance s;
    Scored scored;
    const std::string attempts_file = path + ".attempts";
    try {
      util::atomic_write(attempts_file, std::to_string(attempts(path) + 1));
    } catch (const std::exception& e) {
      log("%s", e.what());  // a full disk: scoring goes on without the count
    }
    try {
      s = SourceInstance::read(path);
      id = instance_tag(s.sop_instance_uid);
      scored = scorer_(path);
      std::error_code ec;
      fs::remove(attempts_file, ec);
    } catch (const std::exception& e) {
      move_to_failed(path, e.what());
      ++scored_;  // counted as handled
      log("instance %s could not be scored (moved to failed/): %s", id.c_str(), e.what());
      audit({{"event", "not_scored"},
             {"study", util::audit_hash(s.study_uid)},
             {"instance", util::audit_hash(s.sop_instance_uid)},
             {"model", model_.id},
             {"outcome", std::string("moved to failed/: ") + e.what()}});
      return;
    }
    try {
      const ResultFiles f = write_results(s, scored.finding, model_, scored.picture, results_.string(), o_.uid_root);
      if (!destination_.host.empty()) {
        for (const std::string& r : {f.report, f.secondary_capture}) {
          const fs::path tmp = outbox_ / (fs::path(r).filename().string() + ".tmp");
          fs::copy_file(r, tmp, fs::copy_options::overwrite_existing);
          fs::rename(tmp, outbox_ / fs::path(r).filename());
        }
      }
      fs::remove(path);
    } catch (const std::exception& e) {
      remove_outbox_copies_in_progress();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        retry_.push_back(path);
        retry_at_ = std::chrono::steady_clock::now() + std::chrono::seconds(kRetrySeconds);
      }
      log("cannot write the results of instance %s (%s); it stays in incoming/ and is tried again "
          "in %d s",
          id.c_str(), e.what(), kRetrySeconds);
      audit({{"event", "results_not_written"},
             {"study", util::audit_hash(s.study_uid)},
             {"instance", util::audit_hash(s.sop_instance_uid)},
             {"model", model_.id},
             {"outcome", std::string("kept in incoming/, retried: ") + e.what()}});
      return;
    }
    ++scored_;
    log("scored instance %s: %s (P(fracture) %.3f); report and secondary capture written",
        id.c_str(), scored.finding.decision.c_str(), scored.finding.probability);
    audit({{"event", "scored"},
           {"study", util::audit_hash(s.study_uid)},
           {"instance", util::audit_hash(s.sop_instance_uid)},
           {"model", model_.id},
           {"model_sha256", model_.sha256},
           {"decision", scored.finding.decision},
           {"probability", scored.finding.probability},
           {"boxes", scored.finding.regions.size()},
           {"outcome", "report and secondary capture written"}});
  }

  // The results are copied into outbox/ as NAME.tmp, then renamed: a copy cut short leaves the
  // .tmp.
  void remove_outbox_copies_in_progress() {
    for (const auto& e : fs::directory_iterator(outbox_)) {
      std::error_code ec;
      if (e.path().extension() == ".tmp") fs::remove(e.path(), ec);
    }
  }

  bool outbox_empty() const {
    for (const auto& e : fs::directory_iterator(outbox_))
      if (e.path().extension() == ".dcm") return false;
    return true;
  }

  void forward_outbox() {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(outbox_))
      if (e.path().extension() == ".dcm") files.push_back(e.path());
    if (files.empty()) return;
    std::sort(files.begin(), files.end());
    ForwardSCU scu;
    scu.setAETitle((o_.forward_aet.empty() ? o_.aet : o_.forward_aet).c_str());
    scu.setPeerHostName(destination_.host.c_str());
    scu.setPeerPort(static_cast<Uint16>(destination_.port));
    scu.setPeerAETitle(destination_.aet.c_str());
    scu.setACSETimeout(static_cast<Uint32>(o_.timeout_s));
    scu.setDIMSETimeout(static_cast<Uint32>(o_.timeout_s));
    scu.setDIMSEBlockingMode(DIMSE_NONBLOCKING);
    scu.setConnectionTimeout(o_.timeout_s);
    OFList<OFString> ts;
    ts.push_back(UID_LittleEndianExplicitTransferSyntax);
    ts.push_back(UID_LittleEndianImplicitTransferSyntax);
    for (const char* sop : {UID_Comprehensive3DSRStorage, UID_SecondaryCaptureImageStorage})
      scu.addPresentationContext(sop, ts);
    dcmnet_error.clear();
    OFCondition c = scu.initNetwork();
    if (c.good() && tls_out_)
      c = scu.useSecureConnection(tls_out_.get());  // after initNetwork, which it needs
    if (c.good()) c = scu.negotiateAssociation();
    const std::string where =
        destination_.aet + "@" + destination_.host + ":" + std::to_string(destination_.port);
    if (c.bad()) {
      // A rejection's result, source and reason are only in DCMTK's log, e.g. "Association
      // Rejected: Result: Rejected Permanent, Source: Service User Reason: Calling AE Title Not
      // Recognized".
      std::string why = c.text();
      if (c == DUL_ASSOCIATIONREJECTED && !dcmnet_error.empty()) why = dcmnet_error;
      log("cannot reach %s (%s); %zu results wait in outbox/", where.c_str(), why.c_str(),
          files.size());
      audit({{"event", "send_failed"},
             {"destination", where},
             {"reason", why},
             {"waiting", files.size()}});
      return;
    }
    size_t sent = 0;
    for (const fs::path& f : files) {
      DcmFileFormat file;
      if (file.loadFile(f.string().c_str()).bad()) {
        log("outbox file %s is unreadable; moved to failed/", f.filename().c_str());
        std::error_code ec;
        fs::rename(f, failed_ / f.filename(), ec);
        continue;
      }
      const std::string sop_class = attribute(*file.getDataset(), DCM_SOPClassUID);
      const T_ASC_PresentationContextID pres = scu.findPresentationContextID(sop_class.c_str(), "");
      Uint16 status = kNoStatus;
      c = pres == 0 ? OFCondition(EC_IllegalCall) : scu.sendSTORERequest(pres, "", file.getDataset(), status);
      const bool delivered = c.good() && (status == kSuccess || (status & 0xF000) == 0xB000);
      // The file is named after its source instance: SOURCE_UID.sr.dcm or SOURCE_UID.sc.dcm.
      const std::string name = f.filename().string();
      audit({{"event", "sent"},
             {"study", util::audit_hash(attribute(*file.getDataset(), DCM_StudyInstanceUID))},
             {"instance",
              util::audit_hash(name.substr(0, name.size() - std::string(".sr.dcm").size()))},
             {"object", sop_class == UID_SecondaryCaptureImageStorage ? "secondary capture"
                                                                      : "structured report"},
             {"object_uid", util::audit_hash(attribute(*file.getDataset(), DCM_SOPInstanceUID))},
             {"destination", where},
             {"status", c.good() ? status_text(status) : "none"},
             {"outcome", delivered  ? "delivered"
                         : c.good() ? "refused by the destination"
                                    : c.text()}});
      if (delivered) {
        fs::remove(f);
        ++sent;
      } else {
        log("sending %s failed (%s, status 0x%04X); it stays in outbox/", f.filename().c_str(),
            c.good() ? "refused" : c.text(), status);
        if (c.bad()) break;
      }
    }
    scu.releaseAssociation();
    if (sent > 0)
      log("sent %zu result objects to %s@%s:%d", sent, destination_.aet.c_str(), destination_.host.c_str(),
          destination_.port);
  }

  NodeOptions o_;
  ModelIdentity model_;
  const Scorer& scorer_;
  const std::atomic<bool>& external_stop_;
  std::atomic<bool> stop_{false};
  Destination destination_;
  std::vector<Peer> allow_;
  fs::path incoming_, results_, outbox_, failed_;
  std::unique_ptr<DcmTLSTransportLayer> tls_in_, tls_out_;
  std::unique_ptr<util::AuditTrail> audit_;
  static constexpr int kRetrySeconds = 5;
  static constexpr int kMaxAttempts = 3;

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> queued_;
  std::vector<std::string> this_association_;
  std::vector<std::string> retry_;  // results not written (a full disk): tried again at retry_at_
  std::chrono::steady_clock::time_point retry_at_;
  bool busy_ = false;
  std::string calling_, peer_;
  std::atomic<int> scored_{0};
  std::atomic<long> received_counter_{0};
};

OFCondition NodeSCP::handleIncomingCommand(T_DIMSE_Message* msg, const DcmPresentationContextInfo& info) {
  if (msg->CommandField != DIMSE_C_STORE_RQ) return DcmSCP::handleIncomingCommand(msg, info);
  return node_.store(*this, msg->msg.CStoreRQ, info.presentationContextID);
}

void NodeSCP::notifyAssociationRequest(const T_ASC_Parameters& params, DcmSCPActionType& action) {
  DcmSCP::notifyAssociationRequest(params, action);
  node_.association_requested(params.DULparams.callingAPTitle);
  // A sender that proposes only storage classes other than radiographs (a CT, an MR, ...) gets no presentation
  // context, so DICOM refuses its instances at negotiation; the log says why. (Senders that propose every
  // class, as storescu does by default, are not worth a line.)
  auto* p = const_cast<T_ASC_Parameters*>(&params);
  std::set<std::string> offered, other;
  for (const char* uid : {UID_ComputedRadiographyImageStorage, UID_DigitalXRayImageStorageForPresentation,
                          UID_DigitalXRayImageStorageForProcessing, UID_SecondaryCaptureImageStorage,
                          UID_VerificationSOPClass})
    offered.insert(uid);
  bool any_offered = false;
  const int n = ASC_countPresentationContexts(p);
  for (int i = 0; i < n; ++i) {
    T_ASC_PresentationContext pc;
    if (ASC_getPresentationContext(p, i, &pc).bad()) continue;
    if (offered.count(pc.abstractSyntax)) {
      any_offered = true;
    } else {
      const char* name = dcmFindNameOfUID(pc.abstractSyntax, nullptr);
      other.insert(name ? name : pc.abstractSyntax);
    }
  }
  if (!any_offered && !other.empty()) {
    std::string list;
    for (const std::string& o : other) list += (list.empty() ? "" : ", ") + o;
    log("%s proposes only %s: not radiograph storage, refused at negotiation",
        std::string(params.DULparams.callingAPTitle).c_str(), list.c_str());
  }
}
OFBool NodeSCP::checkCallingAETitleAccepted(const OFString& aet) {
  std::string calling = aet.c_str();
  while (!calling.empty() && calling.back() == ' ') calling.pop_back();
  // The caller's address is checked here too, so that a refusal names both.
  return node_.admit(calling, getPeerIP().c_str()) ? OFTrue : OFFalse;
}
void NodeSCP::notifyAssociationTermination() { node_.association_ended(); }
void NodeSCP::notifyAbortRequest() { log("the sender aborted the association"); }
OFBool NodeSCP::stopAfterConnectionTimeout() { return node_.stopping(); }
OFBool NodeSCP::stopAfterCurrentAssociation() { return node_.stopping(); }

}  // namespace

Peer parse_peer(const std::string& text) {
  Peer p;
  const size_t at = text.find('@');
  p.aet = text.substr(0, at);
  if (at != std::string::npos) p.host = text.substr(at + 1);
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("--allow '" + text + "': " + why + " (expected AET or AET@HOST)");
  };
  if (p.aet.empty() || p.aet.size() > 16) throw bad("the AE title must have 1 to 16 characters");
  for (char c : p.aet) {
    if (c == '\\' || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
      throw bad("the AE title holds a backslash or a control character");
  }
  if (at != std::string::npos && p.host.empty()) throw bad("no host after '@'");
  return p;
}

Peer resolve_peer(Peer p) {
  if (p.host.empty()) return p;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(p.host.c_str(), nullptr, &hints, &found);
  if (rc != 0)
    throw std::invalid_argument("--allow " + p.aet + "@" + p.host +
                                ": the host does not resolve (" + gai_strerror(rc) + ")");
  for (addrinfo* a = found; a; a = a->ai_next) {
    char buf[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof(buf), nullptr, 0, NI_NUMERICHOST) == 0)
      p.addresses.push_back(buf);
  }
  freeaddrinfo(found);
  return p;
}

namespace {

// The address without a ":port" suffix or an IPv4-mapped IPv6 prefix.
std::string bare_address(std::string a) {
  if (std::count(a.begin(), a.end(), ':') == 1) a = a.substr(0, a.find(':'));
  if (a.rfind("::ffff:", 0) == 0 && a.find('.') != std::string::npos) a = a.substr(7);
  return a;
}

}  // namespace

bool is_loopback(const std::string& address) {
  const std::string a = bare_address(address);
  return a == "::1" || a == "localhost" || a.rfind("127.", 0) == 0;
}

bool peer_allowed(const std::vector<Peer>& allow, const std::string& calling_aet,
                  const std::string& address) {
  if (allow.empty()) return is_loopback(address);
  const std::string a = bare_address(address);
  for (const Peer& p : allow) {
    if (p.aet != calling_aet) continue;
    if (p.host.empty()) return true;
    for (const std::string& x : p.addresses) {
      if (bare_address(x) == a) return true;
    }
  }
  return false;
}

std::vector<std::string> read_peers_file(const std::string& path) {
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("--peers " + path + ": " + why);
  };
  std::ifstream in(path);
  if (!in) throw bad("cannot be read");
  json j;
  try {
    j = json::parse(in);
  } catch (const std::exception& e) {
    throw bad(std::string("not JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("allow") || !j["allow"].is_array())
    throw bad("expected {\"allow\": [\"AET\", \"AET@HOST\", ...]}");
  std::vector<std::string> out;
  for (size_t i = 0; i < j["allow"].size(); ++i) {
    const json& e = j["allow"][i];
    if (!e.is_string()) throw bad("allow[" + std::to_string(i) + "] is not a string");
    try {
      parse_peer(e.get<std::string>());
    } catch (const std::invalid_argument& x) {
      throw bad("allow[" + std::to_string(i) + "]: " + x.what());
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

Destination parse_destination(const std::string& text) {
  const size_t a = text.find(':');
  const size_t b = a == std::string::npos ? std::string::npos : text.find(':', a + 1);
  if (b == std::string::npos || text.find(':', b + 1) != std::string::npos)
    throw std::invalid_argument("--forward '" + text + "': expected HOST:PORT:AET");
  Destination d;
  d.host = text.substr(0, a);
  const std::string port = text.substr(a + 1, b - a - 1);
  d.aet = text.substr(b + 1);
  if (d.host.empty()) throw std::invalid_argument("--forward '" + text + "': no host");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535)
    throw std::invalid_argument("--forward '" + text + "': port must be 1-65535");
  d.port = std::stoi(port);
  if (d.aet.empty() || d.aet.size() > 16) throw std::invalid_argument("--forward '" + text + "': AE title must be 1-16 characters");
  return d;
}

std::uint64_t free_megabytes(const std::string& path) {
  struct statvfs st {};
  if (statvfs(path.c_str(), &st) != 0)
    throw std::runtime_error("cannot tell the free space in " + path + ": " + std::strerror(errno));
  return static_cast<std::uint64_t>(st.f_bavail) * st.f_frsize / (1024 * 1024);
}

std::string instance_tag(const std::string& uid) {
  if (uid.empty()) return "unknown";
  return util::audit_hash(uid).substr(
      0, 10);  // the start of the name the audit trail and incoming/ use
}

int run_node(const NodeOptions& options, const ModelIdentity& model, const Scorer& scorer,
             const std::atomic<bool>& stop) {
  if (options.port < 1 || options.port > 65535) throw std::invalid_argument("--port must be 1-65535");
  if (options.aet.empty() || options.aet.size() > 16) throw std::invalid_argument("--aet must be 1-16 characters");
  if (options.queue_capacity < 1) throw std::invalid_argument("--queue must be >= 1");
  OFLog::configure(OFLogger::OFF_LOG_LEVEL);
  keep_dcmnet_errors();
  Node node(options, model, scorer, stop);
  return node.run();
}

}  // namespace wristssl::dicom
