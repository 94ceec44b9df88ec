From: =?windows-1251?Q?=C4=EC=E8=F2=F0=E8=E9_=CE=F0=EB=EE=E2?= <d.orlov@list.ru>
To: sales@teplodom.ru
Subject: =?windows-1251?Q?=D0=E0=F1=F7=B8=F2_=EE=F2=EE=EF=EB=E5=ED=E8=FF_=E4=EB=FF?=
 =?windows-1251?Q?_=F7=E0=F1=F2=ED=EE=E3=EE_=E4=EE=EC=E0?=
Date: Thu, 07 Mar 2024 09:00:00 +0300
Message-ID: <1709791200.551234@list.ru>
MIME-Version: 1.0
Content-Type: text/plain
Content-Transfer-Encoding: 8bit

Добрый день.

Строим частный дом 180 кв. м в Подмосковье, хотим заказать у вас расчёт
системы отопления с тёплыми полами на первом этаже. Котёл планируем газовый,
настенный. Когда сможет приехать инженер на замер? Удобнее всего в субботу.

Мой телефон +7 925 123 45 67, звоните в любое время.

Дмитрий Орлов
