//! The embedded payment gateway, for the demo and the tests: idempotent by key like a real one (a key is charged
//! once; a repeat gets the first answer), and scriptable through the payment method reference, so a seeded
//! subscription chooses how its card behaves:
//!
//! - `pm_decline…`: every charge is declined;
//! - `pm_decline_<n>…`: the method's first `n` charges are declined, the next ones charged;
//! - `pm_timeout…`: the first request of each key is charged but its answer is lost (a timeout);
//! - `pm_5xx…`: the first request of each key fails before charging (a 5xx);
//! - anything else: charged.
//!
//! With a directory, each charge is also a line of `charges.jsonl` there, read back at start: a key charged
//! by an earlier run is not charged again, and the demo shows what was charged.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use shared::{
    ports::{ChargeOutcome, ChargeRequest, Payments},
    Error, Result,
};

/// One charge the gateway made: a line of `charges.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub key: String,
    pub amount_cents: i64,
    pub currency: String,
    pub method: String,
    pub reference: String,
}

#[derive(Default)]
struct State {
    /// Every key asked, with its first answer.
    answers: HashMap<String, ChargeOutcome>,
    /// Keys whose first request already failed (5xx) or lost its answer (timeout).
    faulted: HashMap<String, ()>,
    /// Charges asked per method, for `pm_decline_<n>`.
    asked: HashMap<String, u32>,
    charges: Vec<Charge>,
}

pub struct FakeGateway {
    state: Mutex<State>,
    /// How long each request takes: the benchmark's stand-in for a real gateway's latency.
    latency: Duration,
    log: Option<PathBuf>,
}

impl FakeGateway {
    pub fn new(latency: Duration) -> Self {
        Self { state: Mutex::default(), latency, log: None }
    }

    /// A gateway that keeps its charges in `dir/charges.jsonl`, reading back those of earlier runs.
    pub fn in_dir(dir: &Path, latency: Duration) -> std::result::Result<Self, crate::Error> {
        std::fs::create_dir_all(dir)
            .map_err(|e| crate::Error::Config(format!("creating the payments folder {}: {e}", dir.display())))?;
        let log = dir.join("charges.jsonl");
        let mut state = State::default();
        if let Ok(file) = File::open(&log) {
            for (n, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| crate::Error::Config(format!("reading {}: {e}", log.display())))?;
                let charge: Charge = serde_json::from_str(&line).map_err(|e| {
                    crate::Error::Config(format!("{} line {}: not a charge: {e}", log.display(), n + 1))
                })?;
                state
                    .answers
                    .insert(charge.key.clone(), ChargeOutcome::Charged { reference: charge.reference.clone() });
                state.charges.push(charge);
            }
        }
        Ok(Self { state: Mutex::new(state), latency, log: Some(log) })
    }

    /// Every charge made, in order (those of earlier runs first).
    pub fn charges(&self) -> Vec<Charge> {
        self.state.lock().expect("gateway lock").charges.clone()
    }

    /// The answer to a request, deciding it under the lock so concurrent requests of one key agree.
    fn answer(&self, request: &ChargeRequest) -> Result<ChargeOutcome> {
        let mut state = self.state.lock().expect("gateway lock");
        if let Some(answer) = state.answers.get(&request.key) {
            return Ok(answer.clone());
        }
        let method = request.method.as_str();
        let first_request = state.faulted.insert(request.key.clone(), ()).is_none();
        if method.starts_with("pm_5xx") && first_request {
            return Err(Error::retryable("payment gateway: HTTP 503, nothing charged"));
        }
        let asked = state.asked.entry(request.method.clone()).or_default();
        *asked += 1;
        let declines = match method.strip_prefix("pm_decline") {
            Some(rest) => match rest.strip_prefix('_').and_then(|n| n.split('_').next()?.parse::<u32>().ok()) {
                Some(n) => *asked <= n,
                None => true,
            },
            None => false,
        };
        let answer = if declines {
            ChargeOutcome::Declined { reason: "card declined: insufficient funds".to_owned() }
        } else {
            let reference = format!("fake_ch_{}", request.key);
            let charge = Charge {
                key: request.key.clone(),
                amount_cents: request.amount_cents,
                currency: request.currency.clone(),
                method: request.method.clone(),
                reference: reference.clone(),
            };
            if let Some(log) = &self.log {
                let line = serde_json::to_string(&charge).expect("a charge serialises");
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .and_then(|mut file| writeln!(file, "{line}"))
                    .map_err(|e| Error::retryable(format!("payment gateway: writing {}: {e}", log.display())))?;
            }
            state.charges.push(charge);
            ChargeOutcome::Charged { reference }
        };
        state.answers.insert(request.key.clone(), answer.clone());
        if method.starts_with("pm_timeout") && first_request {
            return Err(Error::retryable("payment gateway: timed out waiting for the answer"));
        }
        Ok(answer)
    }
}

#[async_trait]
impl Payments for FakeGateway {
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        self.answer(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(key: &str, method: &str) -> ChargeRequest {
        ChargeRequest { key: key.into(), amount_cents: 1299, currency: "INR".into(), method: method.into() }
    }

    fn gateway() -> FakeGateway {
        FakeGateway::new(Duration::ZERO)
    }

    #[tokio::test]
    async fn a_key_is_charged_once_and_repeats_get_the_first_answer() {
        let gateway = gateway();
        let first = gateway.charge(&request("order-1-attempt-1", "pm_visa")).await.unwrap();
        let again = gateway.charge(&request("order-1-attempt-1", "pm_visa")).await.unwrap();
        assert!(matches!(first, ChargeOutcome::Charged { .. }));
        assert_eq!(first, again);
        assert_eq!(gateway.charges().len(), 1);
    }

    #[tokio::test]
    async fn a_timeout_charges_and_loses_the_answer_then_the_same_key_returns_it() {
        let gateway = gateway();
        let lost = gateway.charge(&request("k", "pm_timeout")).await.unwrap_err();
        assert!(lost.is_retryable(), "{lost}");
        assert_eq!(gateway.charges().len(), 1, "charged although the answer was lost");
        let answer = gateway.charge(&request("k", "pm_timeout")).await.unwrap();
        assert_eq!(answer, ChargeOutcome::Charged { reference: gateway.charges()[0].reference.clone() });
        assert_eq!(gateway.charges().len(), 1);
    }

    #[tokio::test]
    async fn a_5xx_charges_nothing_and_the_retry_charges() {
        let gateway = gateway();
        assert!(gateway.charge(&request("k", "pm_5xx")).await.unwrap_err().is_retryable());
        assert!(gateway.charges().is_empty());
        assert!(matches!(gateway.charge(&request("k", "pm_5xx")).await.unwrap(), ChargeOutcome::Charged { .. }));
        assert_eq!(gateway.charges().len(), 1);
    }

    #[tokio::test]
    async fn declines_always_or_for_the_first_n_charges_of_a_method() {
        let gateway = gateway();
        for key in ["a", "b", "c"] {
            assert!(matches!(
                gateway.charge(&request(key, "pm_decline")).await.unwrap(),
                ChargeOutcome::Declined { .. }
            ));
        }
        let mut outcomes = vec![];
        for key in ["1", "2", "3"] {
            outcomes.push(matches!(
                gateway.charge(&request(key, "pm_decline_2_ana")).await.unwrap(),
                ChargeOutcome::Charged { .. }
            ));
        }
        assert_eq!(outcomes, [false, false, true]);
    }

    #[tokio::test]
    async fn charges_survive_a_restart_in_their_folder() {
        let dir = std::env::temp_dir().join(format!("gateway-{}", uuid::Uuid::new_v4().simple()));
        let first = FakeGateway::in_dir(&dir, Duration::ZERO).unwrap();
        let answer = first.charge(&request("k", "pm_visa")).await.unwrap();
        let restarted = FakeGateway::in_dir(&dir, Duration::ZERO).unwrap();
        assert_eq!(restarted.charge(&request("k", "pm_visa")).await.unwrap(), answer);
        assert_eq!(restarted.charges().len(), 1, "not charged again");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
