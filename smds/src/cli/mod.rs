//! The subcommands of `smds`, one file each: [`serve`], [`events`], [`event`], [`discover`].
//! Each turns its arguments into library calls and prints; errors are one readable line.

pub mod discover;
pub mod event;
pub mod events;
pub mod serve;
