-- bench/connect.lua: sysbench script for the new-connection rate. One event = connect
-- (TCP + MySQL handshake + authentication), `SELECT 1`, disconnect.
-- sysbench bench/connect.lua --db-driver=mysql --mysql-host=... --mysql-port=... \
--   --mysql-user=sbtest --mysql-password=... --threads=8 --time=10 run
function thread_init()
    drv = sysbench.sql.driver()
end

function event()
    local con = drv:connect()
    con:query("SELECT 1")
    con:disconnect()
end
