//! The SGP.22 functions this SM-DS serves and the HTTP paths they are called on (SGP.22 6.1-6.5;
//! `../shared/spec/es11-es12-notes.md` section 1). The server routes with [`Function::route`] and
//! the lab clients call the same constants, so a path is written once.

/// `POST` paths of the JSON binding.
pub mod path {
    /// ES11 on the ES9+ path family: what lpac, euicc-go and euicc-rs call on an SM-DS.
    pub const ES9PLUS_INITIATE_AUTHENTICATION: &str = "/gsma/rsp2/es9plus/initiateAuthentication";
    pub const ES9PLUS_AUTHENTICATE_CLIENT: &str = "/gsma/rsp2/es9plus/authenticateClient";
    /// ES11 on its own path family.
    pub const ES11_INITIATE_AUTHENTICATION: &str = "/gsma/rsp2/es11/initiateAuthentication";
    pub const ES11_AUTHENTICATE_CLIENT: &str = "/gsma/rsp2/es11/authenticateClient";
    /// ES12 (SM-DP+ to SM-DS, mutual TLS).
    pub const ES12_REGISTER_EVENT: &str = "/gsma/rsp2/es12/registerEvent";
    pub const ES12_DELETE_EVENT: &str = "/gsma/rsp2/es12/deleteEvent";
    /// ES15 (Alternative SM-DS to Root SM-DS, mutual TLS with CERT.DS.TLS on both sides). The
    /// paths follow ES12's pattern: inferred, not read in SGP.22 (`es11-es12-notes.md` 8.3).
    pub const ES15_REGISTER_EVENT: &str = "/gsma/rsp2/es15/registerEvent";
    pub const ES15_DELETE_EVENT: &str = "/gsma/rsp2/es15/deleteEvent";
    /// SGP.22 v3 Event Checking (ES11.CheckEvent). Both paths are inferred from the v2 families
    /// (`sgp22-v3-es15-notes.md` 1.1).
    pub const ES11_CHECK_EVENT: &str = "/gsma/rsp2/es11/checkEvent";
    pub const ES9PLUS_CHECK_EVENT: &str = "/gsma/rsp2/es9plus/checkEvent";
    /// The ASN.1 binding (SGP.22 6.6): ES11 only on an SM-DS (see `asn1_binding`).
    pub const ASN1: &str = "/gsma/rsp2/asn1";
}

/// The SGP.22 functions served on the TLS port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    Es11InitiateAuthentication,
    Es11AuthenticateClient,
    Es11CheckEvent,
    Es12RegisterEvent,
    Es12DeleteEvent,
    Es15RegisterEvent,
    Es15DeleteEvent,
}

impl Function {
    /// The function a request path calls, if any.
    pub fn route(p: &str) -> Option<Function> {
        match p {
            path::ES9PLUS_INITIATE_AUTHENTICATION | path::ES11_INITIATE_AUTHENTICATION => {
                Some(Function::Es11InitiateAuthentication)
            }
            path::ES9PLUS_AUTHENTICATE_CLIENT | path::ES11_AUTHENTICATE_CLIENT => {
                Some(Function::Es11AuthenticateClient)
            }
            path::ES11_CHECK_EVENT | path::ES9PLUS_CHECK_EVENT => Some(Function::Es11CheckEvent),
            path::ES12_REGISTER_EVENT => Some(Function::Es12RegisterEvent),
            path::ES12_DELETE_EVENT => Some(Function::Es12DeleteEvent),
            path::ES15_REGISTER_EVENT => Some(Function::Es15RegisterEvent),
            path::ES15_DELETE_EVENT => Some(Function::Es15DeleteEvent),
            _ => None,
        }
    }

    /// The name used in logs and metrics, as SGP.22 writes it.
    pub fn name(self) -> &'static str {
        match self {
            Function::Es11InitiateAuthentication => "ES11.InitiateAuthentication",
            Function::Es11AuthenticateClient => "ES11.AuthenticateClient",
            Function::Es11CheckEvent => "ES11.CheckEvent",
            Function::Es12RegisterEvent => "ES12.RegisterEvent",
            Function::Es12DeleteEvent => "ES12.DeleteEvent",
            Function::Es15RegisterEvent => "ES15.RegisterEvent",
            Function::Es15DeleteEvent => "ES15.DeleteEvent",
        }
    }

    /// The largest request body this function accepts: a few times the largest real SGP.22 body
    /// (EUICCInfo1 is under 1 KiB; an AuthenticateServerResponse with two certificates and
    /// EUICCInfo2 is 3-4 KiB, base64 adds a third; ES12 bodies are a few hundred bytes), leaving
    /// room for v3 additions such as a SubCA certificate.
    pub fn max_body_bytes(self) -> usize {
        match self {
            Function::Es11InitiateAuthentication => 8 * 1024,
            Function::Es11AuthenticateClient => 32 * 1024,
            Function::Es11CheckEvent => 2 * 1024,
            Function::Es12RegisterEvent
            | Function::Es12DeleteEvent
            | Function::Es15RegisterEvent
            | Function::Es15DeleteEvent => 16 * 1024,
        }
    }

    /// Functions only an authenticated server (a TLS client certificate) may call.
    pub fn needs_client_certificate(self) -> bool {
        self.caller().is_some()
    }

    /// The kind of server whose TLS certificate may call this function: an SM-DP+ (CERT.DP.TLS)
    /// on ES12, an SM-DS (CERT.DS.TLS) on ES15; `None` for ES11, which anyone may call.
    pub fn caller(self) -> Option<crate::identity::PeerRole> {
        use crate::identity::PeerRole;
        match self {
            Function::Es11InitiateAuthentication
            | Function::Es11AuthenticateClient
            | Function::Es11CheckEvent => None,
            Function::Es12RegisterEvent | Function::Es12DeleteEvent => Some(PeerRole::SmDp),
            Function::Es15RegisterEvent | Function::Es15DeleteEvent => Some(PeerRole::SmDs),
        }
    }
}

/// Which of the two ES11 path families a client calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Es11PathFamily {
    /// `/gsma/rsp2/es9plus/...`, as lpac, euicc-go and euicc-rs call an SM-DS.
    Es9Plus,
    /// `/gsma/rsp2/es11/...`.
    Es11,
}

impl Es11PathFamily {
    pub fn initiate_authentication(self) -> &'static str {
        match self {
            Es11PathFamily::Es9Plus => path::ES9PLUS_INITIATE_AUTHENTICATION,
            Es11PathFamily::Es11 => path::ES11_INITIATE_AUTHENTICATION,
        }
    }

    pub fn authenticate_client(self) -> &'static str {
        match self {
            Es11PathFamily::Es9Plus => path::ES9PLUS_AUTHENTICATE_CLIENT,
            Es11PathFamily::Es11 => path::ES11_AUTHENTICATE_CLIENT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_es11_families_route_to_the_same_functions() {
        for family in [Es11PathFamily::Es9Plus, Es11PathFamily::Es11] {
            assert_eq!(
                Function::route(family.initiate_authentication()),
                Some(Function::Es11InitiateAuthentication)
            );
            assert_eq!(
                Function::route(family.authenticate_client()),
                Some(Function::Es11AuthenticateClient)
            );
        }
        assert_eq!(
            Function::route(path::ES15_REGISTER_EVENT),
            Some(Function::Es15RegisterEvent)
        );
        assert_eq!(
            Function::route(path::ES11_CHECK_EVENT),
            Some(Function::Es11CheckEvent)
        );
        assert_eq!(Function::route(path::ASN1), None);
        assert!(Function::Es12DeleteEvent.needs_client_certificate());
        assert!(!Function::Es11AuthenticateClient.needs_client_certificate());
    }
}
