#include "puf/internal/stats.h"

#include <algorithm>
#include <cmath>

namespace hallmark::puf::internal {

double NormalCdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

double NormalQuantile(double p) {
  // Bisection on the CDF: called a handful of times per model, so precision beats speed.
  double lo = -40;
  double hi = 40;
  for (int i = 0; i < 200 && hi - lo > 1e-14; ++i) {
    double mid = 0.5 * (lo + hi);
    if (NormalCdf(mid) < p) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return 0.5 * (lo + hi);
}

double LogBinomialPmf(int n, int k, double p) {
  return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0) + k * std::log(p) +
         (n - k) * std::log1p(-p);
}

double BinomialTail(int n, int t, double p) {
  if (t >= n) {
    return 0;
  }
  if (p <= 0) {
    return 0;
  }
  if (p >= 1) {
    return 1;
  }
  // log-sum-exp over k = t+1 .. n.
  double max_log = -INFINITY;
  for (int k = t + 1; k <= n; ++k) {
    max_log = std::max(max_log, LogBinomialPmf(n, k, p));
  }
  double sum = 0;
  for (int k = t + 1; k <= n; ++k) {
    sum += std::exp(LogBinomialPmf(n, k, p) - max_log);
  }
  return std::exp(max_log + std::log(sum));
}

std::vector<double> PoissonBinomial(std::span<const double> probs) {
  std::vector<double> dist(probs.size() + 1, 0.0);
  dist[0] = 1;
  for (size_t i = 0; i < probs.size(); ++i) {
    for (size_t k = i + 1; k > 0; --k) {
      dist[k] = dist[k] * (1 - probs[i]) + dist[k - 1] * probs[i];
    }
    dist[0] *= 1 - probs[i];
  }
  return dist;
}

double PoissonBinomialTail(std::span<const double> probs, int t) {
  // dist[k] for k <= t, and dist[t+1] = P(more than t so far), which only ever grows.
  const auto cap = static_cast<size_t>(t) + 1;
  std::vector<double> dist(cap + 1, 0.0);
  dist[0] = 1;
  for (double p : probs) {
    dist[cap] += dist[cap - 1] * p;
    for (size_t k = cap - 1; k > 0; --k) {
      dist[k] = dist[k] * (1 - p) + dist[k - 1] * p;
    }
    dist[0] *= 1 - p;
  }
  return dist[cap];
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace hallmark::puf::internal
