//! `jobs photo`, `jobs run food-recognition` and `jobs status`: a meal photo uploaded to the local uploads
//! folder as the app would, recognised by the embedded model, and its request looked up by id and by user.

mod common;

use common::{jobs, text};

use shared::ports::{AppWriter, NewUser};

#[tokio::test]
async fn a_photo_uploaded_here_is_recognised_and_its_status_shown_by_id_and_by_user() {
    let dir = std::env::temp_dir().join(format!("jobs-photo-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let store =
        infra::sqlite::SqliteStore::connect(&format!("sqlite://{}", dir.join("jobs.db").display())).await.unwrap();
    store.migrate().await.unwrap();
    let user = NewUser {
        name: "Asha".into(),
        email: "asha@example.com".into(),
        phone: None,
        time_zone: "Asia/Kolkata".into(),
        email_opt_in: true,
    };
    let user = store.add_users(&[user]).await.unwrap()[0].to_string();
    let salad = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/samples/food/salad.png");
    let notes = dir.join("notes.jpg");
    std::fs::write(&notes, "oats, eggs").unwrap();

    let out = jobs(&["status", "lunch.png"], &dir);
    assert!(!out.status.success() && text(&out.stderr).contains("no request \"lunch.png\""), "{}", text(&out.stderr));
    let out = jobs(&["photo", salad, "--user", &user, "--id", "lunch.png"], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("as food/{user}/lunch.png")), "{}", text(&out.stdout));
    assert!(dir.join(format!("uploads/food/{user}/lunch.png")).is_file());
    let out = jobs(&["photo", notes.to_str().unwrap(), "--user", &user], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = jobs(&["run", "food-recognition"], &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 events worked: 1 done, 0 skipped, 0 failed, 1 requests failed, 0 dead-lettered"),
        "{}",
        text(&out.stdout)
    );

    let out = jobs(&["status", "lunch.png"], &dir);
    let shown = text(&out.stdout);
    assert!(shown.contains(&format!("lunch.png  food-recognition  user {user}  succeeded  (1 attempt")), "{shown}");
    assert!(shown.contains("Greek salad: 320 kcal, protein 9 g, carbs 14 g, fat 26 g (91% sure)"), "{shown}");

    let out = jobs(&["status", "--user", &user, "--json"], &dir);
    let requests: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<(&str, &str)> = requests
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["state"].as_str().unwrap(), r["reason"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(states.len(), 2, "{requests}");
    assert!(states.contains(&("succeeded", "")), "{states:?}");
    assert!(
        states.contains(&("failed", "the upload is not a photo: a JPEG, PNG, WebP or GIF image is expected")),
        "{states:?}"
    );

    let out = jobs(&["photo", salad, "--user", &user, "--id", "../escape.png"], &dir);
    assert!(!out.status.success() && text(&out.stderr).contains("is not an upload id"), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}
