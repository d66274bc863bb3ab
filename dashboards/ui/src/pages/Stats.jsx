import { t } from '../i18n.js';
import { useApi, useQueryState, Loadable, fmtNum, RangeSelect, useLang, Link } from '../util.jsx';
import { TimeChart, BarChart, fillBuckets } from '../components/Charts.jsx';
import { WorldMap, countryName } from '../components/WorldMap.jsx';

const DEFAULTS = { since: '24h' };

function TopTable({ items, keyLabel, render, id }) {
  if (!items || items.length === 0) return <p class="muted empty">{t('empty')}</p>;
  return (
    <table class="data compact" id={id}>
      <thead>
        <tr>
          <th>{keyLabel}</th>
          <th>{t('count')}</th>
        </tr>
      </thead>
      <tbody>
        {items.map((i) => (
          <tr>
            <td>{render ? render(i.key) : i.key}</td>
            <td class="num">{fmtNum(i.count)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Stats() {
  useLang();
  const [q, setQ] = useQueryState(DEFAULTS);
  const state = useApi('/api/stats', q, 30000);
  return (
    <section>
      <h1>{t('stats_title')}</h1>
      <div class="toolbar">
        <label class="inline">
          {t('since')} <RangeSelect id="stats-range" value={q.since} onChange={(v) => setQ({ since: v })} />
        </label>
      </div>
      <Loadable state={state}>
        {(d) => {
          // Older servers answer `by_type` / `by_segment`.
          const byType = d.events_by_type || d.by_type || [];
          const bySegment = d.events_by_segment || d.by_segment || [];
          return (
            <div class="stats">
              <div class="card wide">
                <h2>{t('alerts_over_time')}</h2>
                {d.alerts_over_time && d.alerts_over_time.length ? (
                  <TimeChart id="chart-alerts-over-time" points={fillBuckets(d.alerts_over_time, d.bucket_seconds)} label={t('nav_alerts')} />
                ) : (
                  <p class="muted empty">{d.alerts_over_time ? t('empty') : t('unavailable')}</p>
                )}
              </div>
              <div class="card">
                <h2>{t('events_by_type')}</h2>
                {byType.length ? <BarChart id="chart-by-type" items={byType} label={t('count')} /> : <p class="muted empty">{t('empty')}</p>}
              </div>
              <div class="card">
                <h2>{t('events_by_segment')}</h2>
                {bySegment.length ? (
                  <BarChart id="chart-by-segment" items={bySegment} label={t('count')} color="#16a085" />
                ) : (
                  <p class="muted empty">{t('empty')}</p>
                )}
              </div>
              <div class="card">
                <h2>{t('top_rules')}</h2>
                {d.top_rules && d.top_rules.length > 0 && <BarChart id="chart-top-rules" items={d.top_rules.slice(0, 10)} label={t('count')} horizontal color="#c0392b" />}
                <TopTable id="top-rules" items={d.top_rules} keyLabel={t('rule')} render={(k) => <Link href={`/alerts?rule=${encodeURIComponent(k)}`}>{k}</Link>} />
              </div>
              <div class="card">
                <h2>{t('top_talkers')}</h2>
                <TopTable id="top-talkers" items={d.top_talkers} keyLabel={t('ip')} render={(k) => <Link class="mono" href={`/search?q=${encodeURIComponent(`ip:${k}`)}`}>{k}</Link>} />
              </div>
              <div class="card wide">
                <h2>{t('world_map')}</h2>
                <WorldMap items={d.countries || []} />
              </div>
              <div class="card">
                <h2>{t('countries')}</h2>
                <TopTable id="top-countries" items={d.countries} keyLabel={t('countries')} render={(k) => `${countryName(k)} (${k})`} />
              </div>
              <div class="card">
                <h2>{t('asns')}</h2>
                <TopTable id="top-asns" items={d.asns} keyLabel="ASN" />
              </div>
            </div>
          );
        }}
      </Loadable>
    </section>
  );
}
