From: =?koi8-r?B?7cnIwcnMIPrBysPF1w==?= <zaitsev.m@inbox.ru>
To: sales@teplodom.ru
Subject: =?koi8-r?B?8M/T1MHXy8Eg1NLVwiDXIO7P18/TycLJ0tPL?=
Date: Fri, 08 Mar 2024 08:05:00 +0700
Message-ID: <ZM-20240308080500@inbox.ru>
MIME-Version: 1.0
Content-Type: text/plain; charset=koi8-r
Content-Transfer-Encoding: base64

+sTSwdfT1NfVytTFIQoK7sHbxcogz9LHwc7J2sHDyckg1NLFwtXA1NPRINPUwczYztnFINTS1cLZ
IMTJwc3F1NLPzSA1NyDJIDc2IM3JzMzJzcXU0s/XLArPwt3FyiDEzMnOz8ogz8vPzM8g0M/M1dTP
0sEgy8nMz83F1NLP1y4g5M/T1MHXy8EgztXWzsEg1yDuz9fP08nCydLTyy4KCvrXz87J1MU6IDg5
MTYxMjM0NTY3CgrtycjBycwg+sHKw8XXCg==
