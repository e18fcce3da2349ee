//! Builds the adapters a process uses from its `Config`, once, and a task's runtime over them: the same
//! wiring for the Lambda functions, the `jobs` command, the demo and the tests.

use std::sync::Arc;

use shared::{
    channels::Channels,
    limits::Pace,
    ports::ORDER_EVENTS_TASK,
    ports::{
        ActivityStore, AppWriter, Boards, ChallengeNotices, Challenges, Contacts, FoodLog, FoodRecognizer, History,
        InactivityReminders, Ledger, Mailer, MaintenanceWriter, MonthlyReports, Notifier, OrderEvents, OrderNotices,
        Payments, Photos, Queue, Renewals, RunStore, ShopStore, ShopWriter, StatsCache, Suppressions, Sweeper,
        Unsubscribes, WeeklyReports, ZoneMoves,
    },
    runtime::{JobRuntime, RuntimeSettings},
    tasks::{
        self,
        fitness::inactivity_reminders,
        maintenance::{cleanup::Ages, job_history_retention},
        messages::Letterhead,
        Builder, Deps,
    },
    time::Clock,
    unsubscribe::Signer,
};

#[cfg(feature = "event-bus")]
use crate::event_bus::EventBridgeBus;
#[cfg(any(feature = "food", feature = "embedded"))]
use crate::food::SampleRecognizer;
#[cfg(feature = "food")]
use crate::food::{ApiKeySource, HttpRecognizer, S3Photos};
use crate::{
    config::{Config, FoodModelConfig, KeySource, MailConfig, PaymentsConfig, QueueConfig, UploadsConfig},
    event_bus::QueueOrderEvents,
    payments::FakeGateway,
    postgres::PgStore,
    ses::SesMailer,
    sns::SnsNotifier,
    sqs::SqsQueue,
    Error,
};
#[cfg(feature = "embedded")]
use crate::{
    embedded_queue::EmbeddedQueue,
    food::LocalUploads,
    outbox::{OutboxMailer, OutboxNotifier},
    sqlite::SqliteStore,
};

/// What a Lambda function's build says when its config asks for what it was built without.
#[cfg(not(all(feature = "embedded", feature = "food")))]
fn not_built(what: &str, feature: &str) -> Error {
    Error::Config(format!(
        "{what} is not in this build: it needs infra's `{feature}` feature (the `jobs` command has it)"
    ))
}

/// The store, in whichever backend the URL names.
#[derive(Clone)]
pub enum Store {
    Postgres(Arc<PgStore>),
    #[cfg(feature = "embedded")]
    Sqlite(Arc<SqliteStore>),
}

impl Store {
    pub async fn connect(database_url: &str) -> Result<Self, Error> {
        if database_url.starts_with("sqlite:") {
            #[cfg(feature = "embedded")]
            return Ok(Self::Sqlite(Arc::new(SqliteStore::connect(database_url).await?)));
            #[cfg(not(feature = "embedded"))]
            return Err(not_built("a SQLite database", "embedded"));
        }
        Ok(Self::Postgres(Arc::new(PgStore::connect(database_url).await?)))
    }

    /// The store the config names: its URL, or the secret holding PostgreSQL's, read now.
    pub async fn open(database: &KeySource) -> Result<Self, Error> {
        match database {
            KeySource::Value(url) => Self::connect(url.expose()).await,
            KeySource::SecretArn(arn) => {
                let client = aws_sdk_secretsmanager::Client::new(&crate::aws::sdk_config().await);
                Ok(Self::Postgres(Arc::new(PgStore::connect_with_secret(client, arn.clone()).await?)))
            }
        }
    }

    /// An invocation begins: PostgreSQL's pooled connections are checked before their first statement in it.
    pub fn invocation_begins(&self) {
        match self {
            Self::Postgres(s) => s.invocation_begins(),
            #[cfg(feature = "embedded")]
            Self::Sqlite(_) => {}
        }
    }

    /// After the server refused the credentials, PostgreSQL's read again from their secret (a rotation): true
    /// when they changed, and the next connections use them.
    pub async fn renew_credentials(&self) -> Result<bool, Error> {
        match self {
            Self::Postgres(s) => s.renew_credentials().await,
            #[cfg(feature = "embedded")]
            Self::Sqlite(_) => Ok(false),
        }
    }

    /// Creates or updates the schema. Deployments run it once (`jobs migrate`), never at a Lambda cold start.
    pub async fn migrate(&self) -> Result<(), Error> {
        match self {
            Self::Postgres(s) => s.migrate().await,
            #[cfg(feature = "embedded")]
            Self::Sqlite(s) => s.migrate().await,
        }
    }
}

/// The store as each port: both stores implement every port, so each accessor is the same match.
macro_rules! ports {
    ($($name:ident: $port:ident),* $(,)?) => {
        impl Store {
            $(pub fn $name(&self) -> Arc<dyn $port> {
                match self {
                    Self::Postgres(s) => s.clone(),
                    #[cfg(feature = "embedded")]
                    Self::Sqlite(s) => s.clone(),
                }
            })*
        }
    };
}

ports! {
    runs: RunStore,
    ledger: Ledger,
    activity: ActivityStore,
    weekly_reports: WeeklyReports,
    monthly_reports: MonthlyReports,
    inactivity_reminders: InactivityReminders,
    challenge_notices: ChallengeNotices,
    renewals: Renewals,
    zone_moves: ZoneMoves,
    contacts: Contacts,
    writer: AppWriter,
    shop: ShopStore,
    order_notices: OrderNotices,
    shop_writer: ShopWriter,
    history: History,
    sweeper: Sweeper,
    maintenance_writer: MaintenanceWriter,
    unsubscribes: Unsubscribes,
    boards: Boards,
    challenges: Challenges,
    stats_cache: StatsCache,
    food_log: FoodLog,
    suppressions: Suppressions,
}

impl Store {
    /// What the tasks need, with this store's ports and the given senders, and the tasks' default settings
    /// (`Backend::runtime` sets the configured ones, the payment gateway and the event bus).
    pub fn deps(&self, mailer: Arc<dyn Mailer>, notifier: Arc<dyn Notifier>, letterhead: Letterhead) -> Deps {
        Deps {
            activity: self.activity(),
            moves: self.zone_moves(),
            weekly: self.weekly_reports(),
            monthly: self.monthly_reports(),
            inactivity: self.inactivity_reminders(),
            challenges: self.challenge_notices(),
            renewals: self.renewals(),
            channels: Channels { mailer, notifier, contacts: self.contacts() },
            letterhead,
            inactivity_days: inactivity_reminders::DEFAULT_DAYS,
            shop: self.shop(),
            payments: None,
            order_events: None,
            order_notices: self.order_notices(),
            shop_url: None,
            history: self.history(),
            history_days: job_history_retention::DEFAULT_DAYS,
            sweeper: self.sweeper(),
            cleanup_ages: Ages::default(),
            boards: self.boards(),
            challenge_dates: self.challenges(),
            stats: self.stats_cache(),
            photos: None,
            recognizer: None,
            food_log: self.food_log(),
        }
    }
}

/// Everything a process talks to, built once.
pub struct Backend {
    pub store: Store,
    pub mailer: Arc<dyn Mailer>,
    /// SMS and push: SNS beside SES, the outbox's JSON lines beside its `.eml` files.
    pub notifier: Arc<dyn Notifier>,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    /// The sender and, where a key is configured, the signer of every email's unsubscribe link.
    pub letterhead: Letterhead,
    /// The shop's payment gateway, where one is configured.
    pub payments: Option<Arc<dyn Payments>>,
    /// `EVENT_BUS_NAME`'s bus, where one is configured.
    bus: Option<Arc<dyn OrderEvents>>,
    /// Where the app uploads meal photos, where configured.
    pub photos: Option<Arc<dyn Photos>>,
    /// The vision model food recognition asks, where configured.
    pub recognizer: Option<Arc<dyn FoodRecognizer>>,
    sqs: Option<aws_sdk_sqs::Client>,
    /// Sends a second this process starts, at most.
    send_rate: Option<f64>,
}

impl Backend {
    pub async fn connect(config: Config, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        let store = Store::open(&config.database).await?;
        if matches!(config.queue, QueueConfig::Embedded) && matches!(store, Store::Postgres(_)) {
            return Err(Error::Config("the embedded queue lives in a SQLite database: set QUEUE_URL".into()));
        }
        let needs_aws = matches!(config.queue, QueueConfig::Sqs { .. })
            || config.mail == MailConfig::Ses
            || config.event_bus.is_some()
            || matches!(config.uploads, Some(UploadsConfig::Bucket(_)))
            || matches!(config.food_model, Some(FoodModelConfig::Http { key: KeySource::SecretArn(_), .. }));
        let aws = if needs_aws { Some(crate::aws::sdk_config().await) } else { None };
        let (mailer, send_rate): (Arc<dyn Mailer>, _) = match &config.mail {
            #[cfg(feature = "embedded")]
            MailConfig::Outbox(dir) => (Arc::new(OutboxMailer::new(dir)?), config.send_rate),
            #[cfg(not(feature = "embedded"))]
            MailConfig::Outbox(_) => return Err(not_built("the outbox (OUTBOX_DIR)", "embedded")),
            MailConfig::Ses => {
                let ses = SesMailer::new(aws_sdk_ses::Client::new(aws.as_ref().expect("loaded for SES")))
                    .with_configuration_set(config.mail_configuration_set.clone());
                let send_rate = match (config.send_rate, config.sends) {
                    (Some(rate), _) => Some(rate),
                    (None, false) => None,
                    (None, true) => {
                        let account = ses.max_send_rate().await.map_err(|e| {
                            Error::Config(format!(
                                "reading SES's send rate (GetSendQuota) to pace sends: {e}; or set SEND_RATE"
                            ))
                        })?;
                        Some(share_of(account, config.max_concurrency))
                    }
                };
                if let Some(send_rate) = send_rate {
                    tracing::info!(send_rate, "sends paced to this many a second");
                }
                (Arc::new(ses), send_rate)
            }
        };
        let notifier: Arc<dyn Notifier> = match &config.mail {
            #[cfg(feature = "embedded")]
            MailConfig::Outbox(dir) => Arc::new(OutboxNotifier::new(dir)?),
            #[cfg(not(feature = "embedded"))]
            MailConfig::Outbox(_) => unreachable!("refused with the mailer"),
            MailConfig::Ses => {
                Arc::new(SnsNotifier::new(aws_sdk_sns::Client::new(aws.as_ref().expect("loaded for SES"))))
            }
        };
        let sqs = match &config.queue {
            QueueConfig::Sqs { .. } => Some(aws_sdk_sqs::Client::new(aws.as_ref().expect("loaded for SQS"))),
            QueueConfig::Embedded => None,
        };
        let signer = match &config.links {
            Some(links) => Some(Signer {
                key: crate::secrets::key(&links.key).await?.expose().as_bytes().to_vec(),
                base_url: links.unsubscribe_url.clone(),
            }),
            None => None,
        };
        let letterhead = Letterhead {
            from: config.mail_from.clone(),
            signer,
            preferences: config.links.as_ref().and_then(|l| l.preferences_url.clone()),
        };
        let payments: Option<Arc<dyn Payments>> = match (config.payments, &config.mail) {
            (None, _) => None,
            (Some(PaymentsConfig::Fake), MailConfig::Outbox(dir)) => {
                Some(Arc::new(FakeGateway::in_dir(dir, std::time::Duration::ZERO)?))
            }
            (Some(PaymentsConfig::Fake), MailConfig::Ses) => {
                Some(Arc::new(FakeGateway::new(std::time::Duration::ZERO)))
            }
        };
        #[cfg(feature = "event-bus")]
        let bus: Option<Arc<dyn OrderEvents>> = match (&config.event_bus, &aws) {
            (Some(bus), Some(aws)) => Some(Arc::new(EventBridgeBus::new(aws_sdk_eventbridge::Client::new(aws), bus))),
            _ => None,
        };
        #[cfg(not(feature = "event-bus"))]
        let bus: Option<Arc<dyn OrderEvents>> = None;
        let photos: Option<Arc<dyn Photos>> = match (&config.uploads, &aws) {
            #[cfg(feature = "food")]
            (Some(UploadsConfig::Bucket(_)), Some(aws)) => Some(Arc::new(S3Photos::new(aws_sdk_s3::Client::new(aws)))),
            #[cfg(not(feature = "food"))]
            (Some(UploadsConfig::Bucket(_)), _) => {
                return Err(not_built("the uploads bucket (UPLOADS_BUCKET)", "food"))
            }
            #[cfg(feature = "embedded")]
            (Some(UploadsConfig::Dir(dir)), _) => Some(Arc::new(LocalUploads::new(dir))),
            #[cfg(not(feature = "embedded"))]
            (Some(UploadsConfig::Dir(_)), _) => {
                return Err(not_built("the local uploads folder (UPLOADS_DIR)", "embedded"))
            }
            _ => None,
        };
        let recognizer: Option<Arc<dyn FoodRecognizer>> = match &config.food_model {
            None => None,
            #[cfg(any(feature = "food", feature = "embedded"))]
            Some(FoodModelConfig::Samples) => Some(Arc::new(SampleRecognizer)),
            #[cfg(not(any(feature = "food", feature = "embedded")))]
            Some(FoodModelConfig::Samples) => {
                return Err(not_built("the sample model (FOOD_MODEL_URL=samples)", "food"))
            }
            #[cfg(not(feature = "food"))]
            Some(FoodModelConfig::Http { .. }) => return Err(not_built("the vision model (FOOD_MODEL_URL)", "food")),
            #[cfg(feature = "food")]
            Some(FoodModelConfig::Http { url, model, key, timeout }) => {
                let key = match key {
                    KeySource::Value(key) => ApiKeySource::Value(key.clone()),
                    KeySource::SecretArn(arn) => ApiKeySource::Secret {
                        client: aws_sdk_secretsmanager::Client::new(aws.as_ref().expect("loaded for the key")),
                        arn: arn.clone(),
                    },
                };
                Some(Arc::new(HttpRecognizer::new(url, model, key, *timeout)?))
            }
        };
        Ok(Self {
            store,
            mailer,
            notifier,
            clock,
            config,
            letterhead,
            payments,
            photos,
            recognizer,
            bus,
            sqs,
            send_rate,
        })
    }

    /// The task's queue: the configured SQS queue, or the task's embedded queue.
    #[cfg_attr(not(feature = "embedded"), allow(unused_variables))]
    pub fn queue(&self, task: &str) -> Arc<dyn Queue> {
        match (&self.config.queue, &self.store, &self.sqs) {
            (QueueConfig::Sqs { url, dead_letter_url }, _, Some(client)) => {
                Arc::new(SqsQueue::new(client.clone(), url.clone(), dead_letter_url.clone()))
            }
            #[cfg(feature = "embedded")]
            (QueueConfig::Embedded, Store::Sqlite(store), _) => Arc::new(EmbeddedQueue::new(
                store.db().clone(),
                task,
                self.clock.clone(),
                self.config.max_receive_count,
            )),
            _ => unreachable!("Backend::connect checked the queue against the store"),
        }
    }

    /// Where order events go: the configured bus, else (on the embedded backend) straight onto the order
    /// notifications' queue; none with SQS queues and no bus.
    pub fn order_events(&self) -> Option<Arc<dyn OrderEvents>> {
        match (&self.bus, &self.config.queue) {
            (Some(bus), _) => Some(bus.clone()),
            (None, QueueConfig::Embedded) => Some(Arc::new(QueueOrderEvents { queue: self.queue(ORDER_EVENTS_TASK) })),
            (None, QueueConfig::Sqs { .. }) => None,
        }
    }

    /// The named task's runtime over these adapters; an unknown name is a clear error.
    pub fn runtime(&self, task: &str, settings: RuntimeSettings) -> shared::Result<JobRuntime> {
        self.runtime_of(task, tasks::builder(task)?, settings)
    }

    /// The runtime of the task `build` makes, which must be the task named.
    pub fn runtime_of(&self, task: &str, build: Builder, settings: RuntimeSettings) -> shared::Result<JobRuntime> {
        let deps = Deps {
            inactivity_days: self.config.inactivity_days,
            payments: self.payments.clone(),
            order_events: self.order_events(),
            shop_url: self.config.shop_url.clone(),
            history_days: self.config.history_days,
            cleanup_ages: self.config.cleanup_ages,
            photos: self.photos.clone(),
            recognizer: self.recognizer.clone(),
            ..self.store.deps(self.mailer.clone(), self.notifier.clone(), self.letterhead.clone())
        };
        Ok(JobRuntime {
            task: match build(&deps)? {
                built if built.name() == task => built,
                built => return Err(shared::Error::permanent(format!("{task}'s builder built {}", built.name()))),
            },
            schedule: tasks::schedule(task)?,
            runs: self.store.runs(),
            ledger: self.store.ledger(),
            queue: self.queue(task),
            clock: self.clock.clone(),
            pace: Pace::new(self.send_rate),
            settings: RuntimeSettings { max_receive_count: self.config.max_receive_count, ..settings },
        })
    }
}

/// One instance's share of the account's send rate, when `instances` of the function send at once.
fn share_of(account_rate: f64, instances: u32) -> f64 {
    account_rate / f64::from(instances.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_instance_sends_its_share_of_the_account_rate() {
        assert_eq!(share_of(14.0, 5), 2.8);
        assert_eq!(share_of(1.0, 1), 1.0);
        assert_eq!(share_of(10.0, 0), 10.0);
    }

    #[test]
    fn nothing_starts_within_less_than_a_whole_sdk_call_of_the_deadline() {
        // A send started just outside the margin must be able to take its whole operation timeout and still be
        // settled before Lambda stops the invocation.
        let margin = RuntimeSettings::default().deadline_margin;
        assert!(margin >= crate::aws::OPERATION_TIMEOUT + std::time::Duration::from_secs(2), "{margin:?}");
    }
}
