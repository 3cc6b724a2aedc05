-- The default precaution rules (owner NULL), as data: an owner adds its own
-- rules for its assets through the API; an admin may edit these.
--
-- A rule applies to an asset in a dig answer when the asset's utility type,
-- subtype and hazard class match (NULL matches any), one of the request's work
-- types is in work_types (NULL: any work), and the asset's least possible
-- distance from the dig area (horizontal distance minus its position
-- accuracy; 2 m when the accuracy is unknown or worse than 2 m) lies in
-- [min_distance_m, max_distance_m). A rule that blocks keeps the request from
-- being ready to dig until the owner has answered and, for on-site marking,
-- the marking is done.
--
-- Sources: the CGA tolerance zone (18 in, about 0.5 m, either side of the
-- marked position, here 1 m), KLIC's EV rule (contact the owner at least 3
-- working days ahead of work near high-risk lines), LER's on-site marking
-- (paavisning), and the Danish damage statistics (more than 80 % of damages
-- hit telecom and fibre, most by machines and drilling).

INSERT INTO geoby.precaution_rules
    (owner, utility_type, subtype, hazard_class, work_types, min_distance_m, max_distance_m,
     action, text, notice_working_days, blocks)
SELECT NULL, r.utility_type, r.subtype, r.hazard_class, r.work_types, 0, r.max_distance_m,
       r.action, r.text, r.notice_working_days, r.blocks
FROM (VALUES
    (NULL, NULL, NULL,
     ARRAY['machine_excavation', 'ploughing', 'pile_driving', 'sheet_piling', 'directional_drilling'],
     1.0, 'hand_dig',
     'Expose the asset by hand or vacuum excavation before machines work within 1 m of it (tolerance zone).',
     NULL, false),
    ('electricity', NULL, 'very_dangerous', NULL, 5.0, 'on_site_marking',
     'The owner marks the high-voltage cable on site before any digging within 5 m.', NULL, true),
    ('electricity', NULL, 'very_dangerous', NULL, 5.0, 'contact_owner',
     'Agree the work with the owner at least 3 working days before it starts.', 3, true),
    ('electricity', NULL, 'very_dangerous', ARRAY['pile_driving', 'sheet_piling', 'directional_drilling'],
     5.0, 'stop',
     'No pile driving, sheet piling or drilling within 5 m of a high-voltage cable without the owner''s written consent.',
     NULL, true),
    ('electricity', NULL, 'dangerous', ARRAY['pile_driving', 'sheet_piling', 'directional_drilling'],
     2.0, 'on_site_marking',
     'The owner marks the cable on site before piling or drilling within 2 m.', NULL, true),
    ('gas', NULL, 'very_dangerous', NULL, 5.0, 'contact_owner',
     'Agree the work with the gas owner at least 3 working days before it starts.', 3, true),
    ('gas', NULL, 'very_dangerous', NULL, 5.0, 'on_site_marking',
     'The owner marks the high-pressure gas main on site before any digging within 5 m.', NULL, true),
    ('gas', NULL, 'very_dangerous', NULL, 5.0, 'supervision',
     'The owner supervises all work within 5 m of a high-pressure gas main.', NULL, true),
    ('gas', NULL, 'very_dangerous', ARRAY['pile_driving', 'sheet_piling', 'directional_drilling'],
     5.0, 'stop',
     'No pile driving, sheet piling or drilling within 5 m of a high-pressure gas main without the owner''s written consent.',
     NULL, true),
    ('gas', NULL, 'dangerous', NULL, 2.0, 'on_site_marking',
     'The owner marks the gas pipe on site before digging within 2 m.', NULL, true),
    ('district_heating', NULL, NULL, NULL, 2.0, 'on_site_marking',
     'The owner marks the district-heating pipe on site before digging within 2 m.', NULL, true),
    ('oil_chemicals', NULL, NULL, NULL, 5.0, 'on_site_marking',
     'The owner marks the pipeline on site before any digging within 5 m.', NULL, true),
    ('oil_chemicals', NULL, NULL, NULL, 5.0, 'supervision',
     'The owner supervises all work within 5 m of the pipeline.', NULL, true),
    ('telecom', NULL, NULL, ARRAY['directional_drilling', 'ploughing', 'pile_driving', 'sheet_piling'],
     2.0, 'on_site_marking',
     'The owner marks the telecom or fibre cable on site before drilling, ploughing or piling within 2 m.',
     NULL, true),
    ('telecom', NULL, NULL, ARRAY['machine_excavation'], 1.0, 'contact_owner',
     'Tell the telecom owner 1 working day before machines dig within 1 m of its cable.', 1, false),
    ('water', NULL, NULL, ARRAY['pile_driving', 'sheet_piling', 'directional_drilling'], 2.0,
     'on_site_marking', 'Ask the water owner to mark the main on site before piling or drilling within 2 m.',
     NULL, false),
    ('sewer', NULL, NULL, ARRAY['pile_driving', 'sheet_piling', 'directional_drilling'], 2.0,
     'contact_owner', 'Tell the sewer owner 1 working day before piling or drilling within 2 m.', 1, false),
    ('other', NULL, NULL, NULL, 2.0, 'contact_owner',
     'The asset''s type is not recorded: contact the owner at least 1 working day before digging within 2 m.',
     1, true)
) AS r (utility_type, subtype, hazard_class, work_types, max_distance_m, action, text,
        notice_working_days, blocks)
WHERE NOT EXISTS (SELECT FROM geoby.precaution_rules WHERE owner IS NULL);
