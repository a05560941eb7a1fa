// Replaced by the server implementation.
namespace hallmark::server {}
