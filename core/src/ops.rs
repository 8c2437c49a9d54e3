//! The operations every host calls: a name and JSON bytes in, JSON bytes out.
