// Replaced by the registry implementation.
namespace hallmark::registry {}
