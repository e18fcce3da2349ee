//! Every message people get, rendered from askama templates under `shared/templates/`: checked when the crate
//! compiles, HTML escaped by default (`.txt` templates are not escaped), and the number formatting every
//! message shares, as template filters.
//!
//! # Adding a message
//!
//! 1. A context struct with what the message says and a `footer: Footer`, deriving `Template` with the HTML
//!    template (`#[template(path = "<domain>/<message>.html")]`), and a newtype over it for the text part
//!    (`#[template(path = "<domain>/<message>.txt")] struct Text<'a>(&'a Context<'a>)`) that derefs to it,
//!    so both templates read the same fields: see `tasks::fitness::daily_summary`.
//! 2. The templates: `{% extends "layout.html" %}` (or `"layout.txt"`) and a `{% block body %}`; the layout
//!    adds the header and the footer (why the user gets it, the unsubscribe and preferences links).
//! 3. `use crate::render::filters;` in the module, so the templates can write `{{ minutes|duration }}`.
//! 4. [`email`] builds the `Email`, with the same unsubscribe link in the body and the headers.
//!
//! SMS and push texts are templates too (a `.txt` template not extending the layout, which is for email).

use askama::Template;

use crate::{
    ports::{Email, Kind},
    Error, Result,
};

/// What the layout's footer says: why this user gets this message and how to stop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    pub kind: Kind,
    /// The one-click unsubscribe link (`unsubscribe::Signer::link`).
    pub unsubscribe: Option<String>,
    /// The user's preferences page in the app.
    pub preferences: Option<String>,
}

/// An email from its two rendered parts; the unsubscribe link of the footer also goes in its headers.
pub fn email(
    from: &str,
    to: &str,
    subject: String,
    html: &impl Template,
    text: &impl Template,
    footer: &Footer,
) -> Result<Email> {
    let render = |part: &dyn askama::DynTemplate| {
        part.dyn_render().map_err(|e| Error::permanent(format!("rendering the email {subject:?}: {e}")))
    };
    Ok(Email {
        from: from.to_owned(),
        to: to.to_owned(),
        html: render(html)?,
        text: render(text)?,
        subject,
        unsubscribe: footer.unsubscribe.clone(),
    })
}

/// Another form of a message over its context, with a template of its own that reads the context's fields:
/// `form!(Sms, "fitness/x.sms.txt", Context)` is `struct Sms<'a>(&'a Context<'a>)`, deref'ing to the context.
/// The text part of an email, an SMS and a push body are forms of one context, so they cannot disagree.
macro_rules! form {
    ($form:ident, $path:literal, $context:ident) => {
        #[derive(askama::Template)]
        #[template(path = $path)]
        struct $form<'a>(&'a $context<'a>);

        impl<'a> std::ops::Deref for $form<'a> {
            type Target = $context<'a>;

            fn deref(&self) -> &Self::Target {
                self.0
            }
        }
    };
}
pub(crate) use form;

/// A template rendered for an SMS or a push, where a failure is the task's bug, never the recipient's.
pub fn text(template: &impl Template, what: &str) -> Result<String> {
    template.render().map(|text| text.trim().to_owned()).map_err(|e| Error::permanent(format!("rendering {what}: {e}")))
}

/// `95` → "1 h 35 min".
pub fn duration(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// `1234567` → "1,234,567".
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// An amount in minor units (cents, paise) as a customer reads it: "₹1,299.00", "$12.50", "€3.05", "£0.99",
/// and for a currency without a symbol here, its code after the amount: "12.50 CHF". Every currency is shown
/// with two decimals: the shop stores every price in hundredths.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let units = cents.unsigned_abs();
    let amount = format!("{}.{:02}", thousands((units / 100) as i64), units % 100);
    let symbol = match currency.to_ascii_uppercase().as_str() {
        "INR" => "₹",
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        _ => return format!("{sign}{amount} {currency}"),
    };
    format!("{sign}{symbol}{amount}")
}

/// `82.5` → "82.5", `100.0` → "100": weights to a tenth, without a trailing ".0".
pub fn trim_weight(kg: f64) -> String {
    let s = format!("{kg:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// From `previous` to `current` as a whole percentage: "+12%", "-5%", "no change"; "new" when there was
/// nothing before, where a percentage would be infinite.
pub fn change(current: f64, previous: f64) -> String {
    if previous == 0.0 {
        return if current == 0.0 { "no change".into() } else { "new".into() };
    }
    match ((current - previous) / previous.abs() * 100.0).round() as i64 {
        0 => "no change".into(),
        p if p > 0 => format!("+{p}%"),
        p => format!("{p}%"),
    }
}

/// The helpers above as template filters: `{{ minutes|duration }}`, `{{ kcal|thousands }}`,
/// `{{ kg|trim_weight }}`, `{{ volume|change(last_week) }}`, `{{ amount_cents|money(currency) }}`.
pub mod filters {
    use std::borrow::Borrow;

    // askama hands a filter its input by value or by reference, as the template expression allows.
    pub fn duration(minutes: impl Borrow<i64>, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::duration(*minutes.borrow()))
    }

    pub fn thousands(n: impl Borrow<i64>, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::thousands(*n.borrow()))
    }

    pub fn trim_weight(kg: impl Borrow<f64>, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::trim_weight(*kg.borrow()))
    }

    pub fn money(cents: impl Borrow<i64>, _: &dyn askama::Values, currency: impl AsRef<str>) -> askama::Result<String> {
        Ok(super::money(*cents.borrow(), currency.as_ref()))
    }

    pub fn change(
        current: impl Borrow<f64>,
        _: &dyn askama::Values,
        previous: impl Borrow<f64>,
    ) -> askama::Result<String> {
        Ok(super::change(*current.borrow(), *previous.borrow()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(duration(45), "45 min");
        assert_eq!(duration(120), "2 h");
        assert_eq!(duration(95), "1 h 35 min");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(-1_000), "-1,000");
        assert_eq!(trim_weight(100.0), "100");
        assert_eq!(trim_weight(82.5), "82.5");
    }

    #[test]
    fn money_reads_in_its_currency() {
        assert_eq!(money(129_900, "INR"), "₹1,299.00");
        assert_eq!(money(1_250, "USD"), "$12.50");
        assert_eq!(money(1_250, "XYZ"), "12.50 XYZ");
        assert_eq!(money(305, "eur"), "€3.05");
        assert_eq!(money(99, "GBP"), "£0.99");
        assert_eq!(money(123_456_789, "CHF"), "1,234,567.89 CHF");
        assert_eq!(money(0, "USD"), "$0.00");
        assert_eq!(money(-1_250, "USD"), "-$12.50", "a refund");
    }

    #[test]
    fn a_change_from_nothing_is_new_not_infinite() {
        assert_eq!(change(5.0, 0.0), "new");
        assert_eq!(change(0.0, 0.0), "no change");
        assert_eq!(change(112.0, 100.0), "+12%");
        assert_eq!(change(95.0, 100.0), "-5%");
        assert_eq!(change(100.2, 100.0), "no change");
        assert_eq!(change(0.0, 40.0), "-100%");
    }
}
