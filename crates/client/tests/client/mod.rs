mod buffer_model;
mod chaos;
mod common;
mod config;
mod delivery;
mod end_fast;
mod import;
mod outcome;
