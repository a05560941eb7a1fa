#include "server/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace hallmark::server {
namespace {

using ::testing::HasSubstr;

// CheckExposition checks `text` against the Prometheus text format (version 0.0.4) the way a
// scraper reads it, and returns the problems found (empty if none): every line is a HELP, a
// TYPE or a sample; names and label names are valid; label values are escaped; each family is
// declared once, before its samples, which stay together; counters end in _total; no series
// repeats; the text ends with a newline.
std::vector<std::string> CheckExposition(const std::string& text) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (?:[^\\\n]|\\[\\n])*)");
  static const std::regex kType(
      R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? (-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|[-+]Inf|NaN))");
  std::vector<std::string> problems;
  if (text.empty() || text.back() != '\n') {
    problems.push_back("does not end with a newline");
  }
  std::map<std::string, std::string> types;  // family -> type
  std::set<std::string> helped;
  std::set<std::string> series;
  std::set<std::string> closed;  // families whose samples ended
  std::string current;           // family of the previous sample
  std::istringstream in(text);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string at = "line " + std::to_string(number) + " '" + line + "': ";
    std::smatch m;
    if (std::regex_match(line, m, kHelp)) {
      if (!helped.insert(m[1]).second) {
        problems.push_back(at + "second HELP");
      }
      continue;
    }
    if (std::regex_match(line, m, kType)) {
      if (types.count(m[1]) != 0) {
        problems.push_back(at + "second TYPE");
      }
      if (m[2] == "counter" && !std::string(m[1]).ends_with("_total")) {
        problems.push_back(at + "counter name does not end in _total");
      }
      types[m[1]] = m[2];
      continue;
    }
    if (!std::regex_match(line, m, kSample)) {
      problems.push_back(at + "neither HELP, TYPE nor a valid sample");
      continue;
    }
    std::string name = m[1];
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string base = name.substr(0, name.size() - std::min(name.size(), strlen(suffix)));
      if (name.ends_with(suffix) && types.count(base) != 0 && types[base] == "histogram") {
        family = base;
      }
    }
    if (types.count(family) == 0) {
      problems.push_back(at + "sample before its TYPE");
    }
    if (family != current) {
      if (closed.count(family) != 0) {
        problems.push_back(at + "samples of a family are not together");
      }
      if (!current.empty()) {
        closed.insert(current);
      }
      current = family;
    }
    if (!series.insert(name + std::string(m[2])).second) {
      problems.push_back(at + "repeated series");
    }
  }
  return problems;
}

TEST(MetricsTest, CheckerRefusesMalformedExpositions) {
  EXPECT_THAT(CheckExposition("x_total 1\n"), ::testing::Contains(HasSubstr("before its TYPE")));
  EXPECT_THAT(CheckExposition("# TYPE x_total counter\nx_total{a=\"b\"c\"} 1\n"),
              ::testing::Contains(HasSubstr("valid sample")));
  EXPECT_THAT(CheckExposition("# TYPE x counter\nx 1\n"), ::testing::Contains(HasSubstr("_total")));
  EXPECT_THAT(CheckExposition("# TYPE x_total counter\nx_total 1\nx_total 2\n"),
              ::testing::Contains(HasSubstr("repeated series")));
  EXPECT_THAT(CheckExposition("# TYPE x_total counter\nx_total 1"),
              ::testing::Contains(HasSubstr("newline")));
  EXPECT_THAT(CheckExposition("# TYPE x_total counter\nx_total{a=\"\\\"\"} 1\n"),
              ::testing::IsEmpty());
}

TEST(MetricsTest, FreshMetricsRenderAValidExposition) {
  Metrics m;
  EXPECT_THAT(CheckExposition(m.Render()), ::testing::IsEmpty()) << m.Render();
}

TEST(MetricsTest, EveryMetricRendersAValidExposition) {
  Metrics m;
  m.ConnectionAccepted();
  m.HandshakeSucceeded("ca", std::chrono::microseconds(700));
  m.HandshakeResumed();
  m.HandshakeFailed(HandshakeFailure::kTimeout);
  m.Request(200);
  m.ChainCacheLookup(true);
  m.ChainCacheLookup(false);
  m.RegistryRefreshed(1767225600);
  m.RegistryRefreshFailed();
  m.SetRecordCacheStats({.entries = 3, .negative_entries = 2, .hits = 10, .misses = 5});
  // Anchor subjects are label values: quotes, backslashes and newlines must be escaped.
  m.CrlLoaded("CN=ACME \"Devices\" CA,O=ACME\\EU", 1767312000);
  m.CrlLoaded("CN=Globex\nCA", 1767312000);
  m.CrlRefused("CN=Globex\nCA");
  const std::string text = m.Render();
  EXPECT_THAT(CheckExposition(text), ::testing::IsEmpty()) << text;
  EXPECT_THAT(text, HasSubstr("hallmark_handshakes_resumed_total 1\n"));
  EXPECT_THAT(text, HasSubstr("hallmark_registry_refresh_failures_total 1\n"));
  EXPECT_THAT(text, HasSubstr("hallmark_registry_last_refresh_timestamp_seconds 1767225600\n"));
  EXPECT_THAT(text, HasSubstr("hallmark_registry_cache_entries{cache=\"negative\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("hallmark_chain_cache_lookups_total{result=\"hit\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("hallmark_crl_next_update_timestamp_seconds{anchor=\"CN=ACME "
                              "\\\"Devices\\\" CA,O=ACME\\\\EU\"} 1767312000\n"));
  EXPECT_THAT(text, HasSubstr("hallmark_crl_loads_total{anchor=\"CN=Globex\\nCA\","
                              "result=\"refused\"} 1\n"));
}

}  // namespace
}  // namespace hallmark::server
