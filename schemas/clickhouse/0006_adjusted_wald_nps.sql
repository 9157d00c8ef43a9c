-- NPS intervals of the analyst views become Rocks' adjusted Wald interval (as
-- services.common.statistics.nps_interval computes it): 3/4 of a response added to the
-- promoters and to the detractors and 3 to n before the multinomial-variance interval is taken,
-- widened to contain the observed NPS. The plain Wald interval collapses for small or one-sided
-- samples (3 promoters of 3 gave [100, 100]). Everything else in the views is unchanged.
DROP VIEW IF EXISTS {db}.quality_hourly;

CREATE VIEW IF NOT EXISTS {db}.quality_hourly AS
SELECT
    hour AS period_start, touchpoint, unit, segment, internal, n, nps_n,
    round(100 * (p - d), 2) AS nps,
    round(if(nps_n = 0, nan, greatest(-100, least(100 * (p - d), 100 * ((pa - da) - 1.959964 * sqrt((pa + da - pow(pa - da, 2)) / (nps_n + 3)))))), 2) AS nps_low,
    round(if(nps_n = 0, nan, least(100, greatest(100 * (p - d), 100 * ((pa - da) + 1.959964 * sqrt((pa + da - pow(pa - da, 2)) / (nps_n + 3)))))), 2) AS nps_high,
    round(d, 4) AS detractor_share,
    round(((detractors / nps_n) + 1.920729 / nps_n - 1.959964 * sqrt((detractors / nps_n) * (1 - detractors / nps_n) / nps_n + 0.960365 / (nps_n * nps_n))) / (1 + 3.841459 / nps_n), 4) AS detractor_share_low,
    round(((detractors / nps_n) + 1.920729 / nps_n + 1.959964 * sqrt((detractors / nps_n) * (1 - detractors / nps_n) / nps_n + 0.960365 / (nps_n * nps_n))) / (1 + 3.841459 / nps_n), 4) AS detractor_share_high,
    csat_n, round(csat_sum / csat_n, 2) AS csat,
    round(csat_sum / csat_n - 1.959964 * sqrt(greatest(0, csat_sumsq / csat_n - pow(csat_sum / csat_n, 2)) / greatest(1, csat_n - 1)), 2) AS csat_low,
    round(csat_sum / csat_n + 1.959964 * sqrt(greatest(0, csat_sumsq / csat_n - pow(csat_sum / csat_n, 2)) / greatest(1, csat_n - 1)), 2) AS csat_high,
    round(csat_top_box / csat_n, 4) AS csat_top_box_share,
    round(((csat_top_box / csat_n) + 1.920729 / csat_n - 1.959964 * sqrt((csat_top_box / csat_n) * (1 - csat_top_box / csat_n) / csat_n + 0.960365 / (csat_n * csat_n))) / (1 + 3.841459 / csat_n), 4) AS csat_top_box_low,
    round(((csat_top_box / csat_n) + 1.920729 / csat_n + 1.959964 * sqrt((csat_top_box / csat_n) * (1 - csat_top_box / csat_n) / csat_n + 0.960365 / (csat_n * csat_n))) / (1 + 3.841459 / csat_n), 4) AS csat_top_box_high,
    ces_n, round(ces_sum / ces_n, 2) AS ces,
    round(ces_sum / ces_n - 1.959964 * sqrt(greatest(0, ces_sumsq / ces_n - pow(ces_sum / ces_n, 2)) / greatest(1, ces_n - 1)), 2) AS ces_low,
    round(ces_sum / ces_n + 1.959964 * sqrt(greatest(0, ces_sumsq / ces_n - pow(ces_sum / ces_n, 2)) / greatest(1, ces_n - 1)), 2) AS ces_high,
    sqi_n, round(sqi_sum / sqi_n, 2) AS sqi,
    sentiment_n, round(sentiment_sum / sentiment_n, 3) AS sentiment,
    round(sentiment_sum / sentiment_n - 1.959964 * sqrt(greatest(0, sentiment_sumsq / sentiment_n - pow(sentiment_sum / sentiment_n, 2)) / greatest(1, sentiment_n - 1)), 3) AS sentiment_low,
    round(sentiment_sum / sentiment_n + 1.959964 * sqrt(greatest(0, sentiment_sumsq / sentiment_n - pow(sentiment_sum / sentiment_n, 2)) / greatest(1, sentiment_n - 1)), 3) AS sentiment_high,
    churn_intent, complaints
FROM
(
    SELECT hour, touchpoint, unit, segment, internal,
        sum(responses) AS n, sum(nps_n) AS nps_n, sum(promoters) AS promoters, sum(detractors) AS detractors,
        promoters / nps_n AS p, detractors / nps_n AS d,
        (promoters + 0.75) / (nps_n + 3) AS pa, (detractors + 0.75) / (nps_n + 3) AS da,
        sum(csat_n) AS csat_n, sum(csat_sum) AS csat_sum, sum(csat_sumsq) AS csat_sumsq, sum(csat_top_box) AS csat_top_box,
        sum(ces_n) AS ces_n, sum(ces_sum) AS ces_sum, sum(ces_sumsq) AS ces_sumsq,
        sum(sqi_n) AS sqi_n, sum(sqi_sum) AS sqi_sum,
        sum(sentiment_n) AS sentiment_n, sum(sentiment_sum) AS sentiment_sum, sum(sentiment_sumsq) AS sentiment_sumsq,
        sum(churn_intent) AS churn_intent, sum(complaints) AS complaints
    FROM {db}.quality_hour
    GROUP BY hour, touchpoint, unit, segment, internal
);

DROP VIEW IF EXISTS {db}.quality_daily;

CREATE VIEW IF NOT EXISTS {db}.quality_daily AS
SELECT
    day AS period_start, touchpoint, unit, segment, internal, n, nps_n,
    round(100 * (p - d), 2) AS nps,
    round(if(nps_n = 0, nan, greatest(-100, least(100 * (p - d), 100 * ((pa - da) - 1.959964 * sqrt((pa + da - pow(pa - da, 2)) / (nps_n + 3)))))), 2) AS nps_low,
    round(if(nps_n = 0, nan, least(100, greatest(100 * (p - d), 100 * ((pa - da) + 1.959964 * sqrt((pa + da - pow(pa - da, 2)) / (nps_n + 3)))))), 2) AS nps_high,
    round(d, 4) AS detractor_share,
    round(((detractors / nps_n) + 1.920729 / nps_n - 1.959964 * sqrt((detractors / nps_n) * (1 - detractors / nps_n) / nps_n + 0.960365 / (nps_n * nps_n))) / (1 + 3.841459 / nps_n), 4) AS detractor_share_low,
    round(((detractors / nps_n) + 1.920729 / nps_n + 1.959964 * sqrt((detractors / nps_n) * (1 - detractors / nps_n) / nps_n + 0.960365 / (nps_n * nps_n))) / (1 + 3.841459 / nps_n), 4) AS detractor_share_high,
    csat_n, round(csat_sum / csat_n, 2) AS csat,
    round(csat_sum / csat_n - 1.959964 * sqrt(greatest(0, csat_sumsq / csat_n - pow(csat_sum / csat_n, 2)) / greatest(1, csat_n - 1)), 2) AS csat_low,
    round(csat_sum / csat_n + 1.959964 * sqrt(greatest(0, csat_sumsq / csat_n - pow(csat_sum / csat_n, 2)) / greatest(1, csat_n - 1)), 2) AS csat_high,
    round(csat_top_box / csat_n, 4) AS csat_top_box_share,
    round(((csat_top_box / csat_n) + 1.920729 / csat_n - 1.959964 * sqrt((csat_top_box / csat_n) * (1 - csat_top_box / csat_n) / csat_n + 0.960365 / (csat_n * csat_n))) / (1 + 3.841459 / csat_n), 4) AS csat_top_box_low,
    round(((csat_top_box / csat_n) + 1.920729 / csat_n + 1.959964 * sqrt((csat_top_box / csat_n) * (1 - csat_top_box / csat_n) / csat_n + 0.960365 / (csat_n * csat_n))) / (1 + 3.841459 / csat_n), 4) AS csat_top_box_high,
    ces_n, round(ces_sum / ces_n, 2) AS ces,
    round(ces_sum / ces_n - 1.959964 * sqrt(greatest(0, ces_sumsq / ces_n - pow(ces_sum / ces_n, 2)) / greatest(1, ces_n - 1)), 2) AS ces_low,
    round(ces_sum / ces_n + 1.959964 * sqrt(greatest(0, ces_sumsq / ces_n - pow(ces_sum / ces_n, 2)) / greatest(1, ces_n - 1)), 2) AS ces_high,
    sqi_n, round(sqi_sum / sqi_n, 2) AS sqi,
    sentiment_n, round(sentiment_sum / sentiment_n, 3) AS sentiment,
    round(sentiment_sum / sentiment_n - 1.959964 * sqrt(greatest(0, sentiment_sumsq / sentiment_n - pow(sentiment_sum / sentiment_n, 2)) / greatest(1, sentiment_n - 1)), 3) AS sentiment_low,
    round(sentiment_sum / sentiment_n + 1.959964 * sqrt(greatest(0, sentiment_sumsq / sentiment_n - pow(sentiment_sum / sentiment_n, 2)) / greatest(1, sentiment_n - 1)), 3) AS sentiment_high,
    churn_intent, complaints
FROM
(
    SELECT day, touchpoint, unit, segment, internal,
        sum(responses) AS n, sum(nps_n) AS nps_n, sum(promoters) AS promoters, sum(detractors) AS detractors,
        promoters / nps_n AS p, detractors / nps_n AS d,
        (promoters + 0.75) / (nps_n + 3) AS pa, (detractors + 0.75) / (nps_n + 3) AS da,
        sum(csat_n) AS csat_n, sum(csat_sum) AS csat_sum, sum(csat_sumsq) AS csat_sumsq, sum(csat_top_box) AS csat_top_box,
        sum(ces_n) AS ces_n, sum(ces_sum) AS ces_sum, sum(ces_sumsq) AS ces_sumsq,
        sum(sqi_n) AS sqi_n, sum(sqi_sum) AS sqi_sum,
        sum(sentiment_n) AS sentiment_n, sum(sentiment_sum) AS sentiment_sum, sum(sentiment_sumsq) AS sentiment_sumsq,
        sum(churn_intent) AS churn_intent, sum(complaints) AS complaints
    FROM {db}.quality_day
    GROUP BY day, touchpoint, unit, segment, internal
);
