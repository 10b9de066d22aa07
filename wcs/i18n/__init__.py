"""One way to speak the reader's language: gettext catalogues managed with Babel.

Every text a person reads - pages, customer notifications, alert titles, reports, the
courier's page, labels and PDFs - is written in English in the source and looked up
in a catalogue at the edge where it is shown:

- ``markers``: ``N_("text")`` and ``NP_("context", "text")`` mark texts that are
  stored in tables (alert titles, state names) so extraction finds them; they do
  nothing at run time, so the pure domain can use them.
- ``catalogues``: the ``.po`` files under ``locales/`` (English is the source
  language and has none), compiled in memory the first time a language is used.
- ``negotiation``: BCP 47 tags to an offered language (``zh``, ``zh-CN``,
  ``zh-Hans``, ``zh-TW`` all read Simplified Chinese), ``Accept-Language``, the
  language of a country.
- ``translator``: ``Translator`` with ``gettext``/``pgettext``/``ngettext`` and the
  names of the system's terms (order states, shipment statuses, devices, severities).
- ``jinja``: a Jinja2 environment per language with the i18n extension installed.
- ``messages``: extraction (``babel.cfg``) and catalogue update, ``make messages``.

This package has no side effects on import; import the module you need.
"""
