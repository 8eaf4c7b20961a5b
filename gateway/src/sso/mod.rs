//! Single sign-on at the gateway (an identity-aware proxy): apps that cannot speak OpenID
//! Connect are protected by the gateway, which is the relying party of the identity provider.
//!
//! * [`access`]: the pure decision (allow / login / step-up / forbidden with a reason).
pub mod access;
