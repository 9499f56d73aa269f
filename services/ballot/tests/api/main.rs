//! The ballot service booted in-process on port 0, with sessions minted as auth and otp
//! would mint them (same secret, no store lookup).

mod anchor;
mod ballot;
mod console;
mod contests;
mod helpers;
mod insider;
mod nominations;
mod receipt;
mod verify_box;
