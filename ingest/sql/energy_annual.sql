-- Annual electricity and heat per building, derived from the hourly consumption:
-- the sums over the 12 months up to the latest hour in the consumption table,
-- and how many hours with data went into them. Buildings without consumption in
-- that period get NULL (unknown), never 0.
UPDATE {buildings}
SET annual_electricity_kwh = NULL, annual_heat_kwh = NULL, consumption_hours = NULL;

WITH period AS (
    SELECT max(time) AS last FROM {consumption}
), annual AS (
    SELECT c.building_id,
           sum(c.electricity_kwh) AS electricity,
           sum(c.heat_kwh) AS heat,
           count(*) AS hours
    FROM {consumption} c, period p
    WHERE c.time > p.last - interval '1 year'
    GROUP BY c.building_id
)
UPDATE {buildings} b
SET annual_electricity_kwh = a.electricity,
    annual_heat_kwh = a.heat,
    consumption_hours = a.hours
FROM annual a
WHERE b.building_id = a.building_id;

SELECT max(time) - interval '1 year' + interval '1 hour', max(time) FROM {consumption};
