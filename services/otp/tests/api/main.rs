//! The code service booted in-process on port 0, with the real SMTP sink.

mod delivery;
mod helpers;
mod otp;
