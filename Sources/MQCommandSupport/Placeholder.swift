import MQLog
