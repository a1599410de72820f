// The MPI/ZeroMQ checking helpers turn a failed C call into an IoError with the call site
// and the library's message.
#include "distributed/checked_call.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <zmq.h>

#include "core/errors.h"
#include "distributed/library_versions.h"

namespace troupe::distributed {
namespace {

using ::testing::HasSubstr;

// MPI_Error_string may only be called between MPI_Init and MPI_Finalize (Open MPI aborts
// otherwise): a singleton MPI run for this binary.
class MpiEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) MPI_Init(nullptr, nullptr);
  }
  void TearDown() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
};
const auto* const kMpiEnvironment = ::testing::AddGlobalTestEnvironment(new MpiEnvironment);

TEST(CheckedCall, MpiSuccessPassesThrough) { EXPECT_EQ(TROUPE_MPI(MPI_SUCCESS), MPI_SUCCESS); }

TEST(CheckedCall, MpiErrorNamesCallSiteAndMessage) {
  try {
    TROUPE_MPI(MPI_ERR_COUNT);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("checked_call_test.cpp:"));
    EXPECT_THAT(e.what(), HasSubstr("MPI call failed: MPI_ERR_COUNT"));
    EXPECT_THAT(e.what(), HasSubstr("count"));  // Open MPI: "MPI_ERR_COUNT: invalid count argument"
  }
}

TEST(CheckedCall, ZmqErrorsCarryZmqStrerror) {
  void* ctx = TROUPE_ZMQ_PTR(zmq_ctx_new());
  try {
    TROUPE_ZMQ_PTR(zmq_socket(ctx, 12345));  // no such socket type: EINVAL
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("ZeroMQ call failed: zmq_socket(ctx, 12345)"));
    EXPECT_THAT(e.what(), HasSubstr("Invalid argument"));
  }
  void* sock = TROUPE_ZMQ_PTR(zmq_socket(ctx, ZMQ_PAIR));
  EXPECT_THROW(TROUPE_ZMQ(zmq_connect(sock, "nonsense://x")), IoError);
  EXPECT_EQ(TROUPE_ZMQ(zmq_close(sock)), 0);
  EXPECT_EQ(TROUPE_ZMQ(zmq_ctx_term(ctx)), 0);
}

TEST(LibraryVersions, ReportsOpenMpiAndZeroMq) {
  auto v = communication_library_versions();
  EXPECT_THAT(v.at("mpi"), HasSubstr("Open MPI"));
  int major = 0, minor = 0, patch = 0;
  zmq_version(&major, &minor, &patch);
  EXPECT_EQ(v.at("zeromq"), std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch));
  EXPECT_EQ(v.at("mpi_standard"), "3.1");
}

}  // namespace
}  // namespace troupe::distributed
