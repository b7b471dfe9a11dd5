"""The two parsers agree: every malformed file of the C driver's tests
(conformance/driver/tests/bad/, each naming its error in a first-lines
comment `# error: LINE:COL: message`) is rejected by the Python parser at the
same line and column, and every scenario of the suite parses."""

import glob
import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

import lang  # noqa: E402

ERROR_LINE = re.compile(rb'^# error: (\d+):(\d+): ', re.M)


class ParserParity(unittest.TestCase):
    def test_bad_files_rejected_at_the_same_place(self):
        files = sorted(glob.glob(os.path.join(
            ROOT, 'conformance', 'driver', 'tests', 'bad', '*.scenario')))
        self.assertGreater(len(files), 20)
        for path in files:
            with open(path, 'rb') as f:
                data = f.read()
            m = ERROR_LINE.search(data)
            self.assertIsNotNone(m, '%s names no error' % path)
            with self.subTest(file=os.path.basename(path)):
                with self.assertRaises(lang.FileError) as caught:
                    lang.parse_scenario(path, data)
                got = str(caught.exception)
                want = '%s:%s:%s: ' % (path, m.group(1).decode(),
                                       m.group(2).decode())
                self.assertTrue(got.startswith(want),
                                'C: %s, Python: %s' % (want, got))

    def test_every_scenario_parses(self):
        files = glob.glob(os.path.join(ROOT, 'conformance', 'scenarios',
                                       '**', '*.scenario'), recursive=True)
        self.assertGreater(len(files), 80)
        for path in files:
            with self.subTest(file=os.path.relpath(path, ROOT)):
                lang.parse_file(path)


if __name__ == '__main__':
    unittest.main()
