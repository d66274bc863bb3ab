// World map of counts per country, drawn as SVG from the `world-atlas` package's Natural Earth
// geometry (bundled: nothing is fetched at runtime).
import { geoEqualEarth, geoPath } from 'd3-geo';
import { feature } from 'topojson-client';
import countries110m from 'world-atlas/countries-110m.json';
import isoCountries from 'i18n-iso-countries';
import enNames from 'i18n-iso-countries/langs/en.json';
import viNames from 'i18n-iso-countries/langs/vi.json';
import { lang, t } from '../i18n.js';
import { fmtNum } from '../util.jsx';

isoCountries.registerLocale(enNames);
isoCountries.registerLocale(viNames);

const WIDTH = 960;
const HEIGHT = 470;
const land = feature(countries110m, countries110m.objects.countries);
const projection = geoEqualEarth().fitSize([WIDTH, HEIGHT], land);
const path = geoPath(projection);
const shapes = land.features.map((f) => ({ id: String(f.id).padStart(3, '0'), name: f.properties.name, d: path(f) }));

/** ISO 3166 numeric code (as in world-atlas) of a key that is an alpha-2, alpha-3 or numeric code or an English name. */
export function numericCode(key) {
  if (key === undefined || key === null) return null;
  const k = String(key).trim();
  if (/^\d{1,3}$/.test(k)) return k.padStart(3, '0');
  if (/^[A-Za-z]{2}$/.test(k)) return isoCountries.alpha2ToNumeric(k.toUpperCase()) || null;
  if (/^[A-Za-z]{3}$/.test(k)) return isoCountries.alpha3ToNumeric(k.toUpperCase()) || null;
  const a2 = isoCountries.getAlpha2Code(k, 'en');
  return a2 ? isoCountries.alpha2ToNumeric(a2) || null : null;
}

/** Country name in the current language for a code or name. */
export function countryName(key) {
  const num = numericCode(key);
  if (!num) return String(key);
  const a2 = isoCountries.numericToAlpha2(num);
  return (a2 && isoCountries.getName(a2, lang.get())) || String(key);
}

function shade(count, max) {
  if (!count) return '#e6e9ee';
  const x = Math.log(1 + count) / Math.log(1 + max);
  const light = 85 - Math.round(x * 50);
  return `hsl(4, 70%, ${light}%)`;
}

export function WorldMap({ items }) {
  const counts = new Map();
  for (const it of items || []) {
    const num = numericCode(it.key);
    if (num) counts.set(num, (counts.get(num) || 0) + Number(it.count || 0));
  }
  const max = Math.max(1, ...counts.values());
  return (
    <svg class="worldmap" id="world-map" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={t('world_map')}>
      {shapes.map((s) => {
        const c = counts.get(s.id) || 0;
        return (
          <path d={s.d} fill={shade(c, max)} stroke="#fff" stroke-width="0.5" data-country={s.id} class={c ? 'has-data' : ''}>
            <title>{`${countryName(s.id) || s.name}: ${fmtNum(c)}`}</title>
          </path>
        );
      })}
    </svg>
  );
}
