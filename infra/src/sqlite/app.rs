use super::*;

#[async_trait]
impl AppWriter for SqliteStore {
    async fn add_exercises(&self, names: &[String]) -> Result<Vec<i64>> {
        let names_param = json!(names).to_string();
        sqlx::query(
            "INSERT INTO exercises (name) SELECT value FROM json_each(?) WHERE true ON CONFLICT (name) DO NOTHING",
        )
        .bind(&names_param)
        .execute(&self.db)
        .await
        .map_err(job)?;
        let ids: HashMap<String, i64> =
            sqlx::query_as("SELECT name, id FROM exercises WHERE name IN (SELECT value FROM json_each(?))")
                .bind(&names_param)
                .fetch_all(&self.db)
                .await
                .map_err(job)?
                .into_iter()
                .collect();
        Ok(names.iter().map(|n| ids[n]).collect())
    }

    async fn add_users(&self, users: &[NewUser]) -> Result<Vec<i64>> {
        let rows: Vec<_> =
            users.iter().map(|u| json!([u.name, u.email, u.phone, u.time_zone, u.email_opt_in])).collect();
        let ids: HashMap<String, i64> = sqlx::query_as(
            "INSERT INTO users (name, email, phone, time_zone, email_opt_in)
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
                    json_extract(value, '$[3]'), json_extract(value, '$[4]')
             FROM json_each(?) RETURNING email, id",
        )
        .bind(json!(rows).to_string())
        .fetch_all(&self.db)
        .await
        .map_err(job)?
        .into_iter()
        .collect();
        Ok(users.iter().map(|u| ids[&u.email]).collect())
    }

    async fn set_time_zone(&self, user_ids: &[i64], zone: &str) -> Result<()> {
        sqlx::query("UPDATE users SET time_zone = ?2 WHERE id IN (SELECT value FROM json_each(?1))")
            .bind(json!(user_ids).to_string())
            .bind(zone)
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn set_created_at(&self, user_ids: &[i64], at: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE users SET created_at = ?2 WHERE id IN (SELECT value FROM json_each(?1))")
            .bind(json!(user_ids).to_string())
            .bind(stamp(at))
            .execute(&self.db)
            .await
            .map_err(job)?;
        Ok(())
    }

    async fn add_challenge(&self, title: &str, starts_on: NaiveDate, ends_on: NaiveDate) -> Result<i64> {
        sqlx::query_scalar("INSERT INTO challenges (title, starts_on, ends_on) VALUES (?, ?, ?) RETURNING id")
            .bind(title)
            .bind(starts_on)
            .bind(ends_on)
            .fetch_one(&self.db)
            .await
            .map_err(job)
    }

    async fn join_challenge(&self, challenge_id: i64, user_ids: &[i64]) -> Result<()> {
        sqlx::query(
            "INSERT INTO challenge_participants (challenge_id, user_id)
             SELECT ?1, value FROM json_each(?2) WHERE true ON CONFLICT DO NOTHING",
        )
        .bind(challenge_id)
        .bind(json!(user_ids).to_string())
        .execute(&self.db)
        .await
        .map_err(job)?;
        Ok(())
    }

    async fn add_workouts(&self, workouts: &[NewWorkout]) -> Result<()> {
        let mut connection = self.db.lock().await;
        let mut tx = connection.begin().await.map_err(job)?;
        let mut sets = Vec::with_capacity(SETS_A_STATEMENT);
        for w in workouts {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO workouts (user_id, name, started_at, local_date, duration_minutes, calories)
                 VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(w.user_id)
            .bind(&w.name)
            .bind(stamp(w.started_at))
            .bind(w.local_date)
            .bind(w.duration_minutes)
            .bind(w.calories)
            .fetch_one(&mut *tx)
            .await
            .map_err(job)?;
            for s in &w.sets {
                sets.push((id, s.exercise_id, s.weight_kg, s.reps, s.personal_record));
                if sets.len() == SETS_A_STATEMENT {
                    add_sets(&mut tx, &sets).await?;
                    sets.clear();
                }
            }
        }
        add_sets(&mut tx, &sets).await?;
        tx.commit().await.map_err(job)
    }
}

/// Sets written by one statement: a statement per set was an eighth of a year of `jobs simulate`'s statements;
/// all of a year's seed in one held 50 MiB more at the peak.
const SETS_A_STATEMENT: usize = 1_000;

/// Sets of (workout, exercise, weight, reps, record), in the order given: their ids are the order a workout's
/// records are read in.
async fn add_sets(tx: &mut sqlx::SqliteConnection, sets: &[(i64, i64, f64, i64, bool)]) -> Result<()> {
    if sets.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO workout_sets (workout_id, exercise_id, weight_kg, reps, personal_record)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?) ORDER BY key",
    )
    .bind(json!(sets).to_string())
    .execute(tx)
    .await
    .map_err(job)?;
    Ok(())
}
