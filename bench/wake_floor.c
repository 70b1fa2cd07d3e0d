/*
 * The floor under mq-bench e2e on this machine: the same chain without mq.
 * A parent appends an 8-byte timestamp to a file once a millisecond; a child
 * waiting on inotify for the directory wakes, reads the new bytes and writes
 * them to a pipe; the parent wakes on the pipe and records the latency.
 * Mode 0 replaces the file and inotify by a pipe. An optional second argument
 * makes the child poll without sleeping for that many microseconds first.
 *
 *   cc -O2 -o /tmp/wake_floor bench/wake_floor.c && /tmp/wake_floor 1
 */
// floor of the e2e chain: A appends to a file (or writes a pipe), B wakes (inotify or pipe), reads, writes a pipe, A wakes.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <signal.h>
static long long now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000LL+t.tv_nsec;}
int cmp(const void*a,const void*b){long long x=*(long long*)a,y=*(long long*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){int mode=atoi(argv[1]); int spin=argc>2?atoi(argv[2]):0; int N=3000;
 char dir[]="/var/tmp/wkXXXXXX"; mkdtemp(dir); char path[256]; snprintf(path,256,"%s/f.log",dir);
 int f=open(path,O_CREAT|O_RDWR,0644); int p1[2],p2[2]; pipe(p1); pipe(p2);
 int in=inotify_init1(IN_NONBLOCK); inotify_add_watch(in,dir,IN_MODIFY);
 pid_t c=fork(); if(c==0){ char buf[4096]; off_t pos=0; for(;;){ struct pollfd pf={mode?in:p1[0],POLLIN,0};
   if(spin){ long long t0=now(); int got=0; while(now()-t0<spin*1000LL){ if(poll(&pf,1,0)>0){got=1;break;} } if(!got) poll(&pf,1,-1);} else poll(&pf,1,-1);
   if(mode){ while(read(in,buf,sizeof buf)>0); ssize_t n=pread(f,buf,4096,pos); if(n<=0)continue; pos+=n; write(p2[1],buf,n);} else { ssize_t n=read(p1[0],buf,4096); if(n<=0) _exit(0); write(p2[1],buf,n);} } }
 long long *lat=malloc(N*8); usleep(100000);
 for(int i=0;i<N;i++){ long long due=now()+1000000; while(now()<due) usleep(100); long long t=now(); if(mode) write(f,&t,8); else write(p1[1],&t,8);
   struct pollfd pf={p2[0],POLLIN,0}; poll(&pf,1,-1); long long r; read(p2[0],&r,8); lat[i]=now()-t; }
 qsort(lat,N,8,cmp); printf("mode %s spin %d: p50 %.1f p90 %.1f p99 %.1f us\n", mode?"file+inotify":"pipe", spin, lat[N/2]/1e3, lat[N*9/10]/1e3, lat[N*99/100]/1e3);
 kill(c,9); waitpid(c,0,0); unlink(path); rmdir(dir); return 0;}
