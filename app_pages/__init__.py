"""The Streamlit UI of twinsim: thin pages over two facades.

Pages: ``home``, ``offer_lab``, ``studio``, ``privacy``, ``owners`` (wired in ``app.py``).
Facades: :mod:`app_pages.services` (worlds, budgets, ledgers, releases, audit exports) and
:mod:`app_pages.trials` (populations, offers, trials, sweeps, forecasts, result exports).
Presentation helpers: ``ui`` (charts, cards, pickers), ``forms`` (inputs), ``templates``
(offer templates in plain language), ``report`` (printable audit HTML). ``cli`` holds the
``twinsim app`` command.
"""

__all__: list[str] = []
