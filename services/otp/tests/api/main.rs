//! The code service booted in-process on port 0, with the real SMTP sink.

mod helpers;
mod otp;
