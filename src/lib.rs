pub mod config;
pub mod controllers;
pub mod domain;
pub mod error;
pub mod repositories;
pub mod services;
pub mod startup;
pub mod telemetry;
