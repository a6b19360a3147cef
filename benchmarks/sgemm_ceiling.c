// Build and run: cc -O2 benchmarks/sgemm_ceiling.c -o /tmp/sgemm_ceiling $(pkg-config --cflags --libs openblas) -ldnnl
//   OMP_NUM_THREADS=2 /tmp/sgemm_ceiling dnnl      (oneDNN sgemm)     OPENBLAS_NUM_THREADS=2 /tmp/sgemm_ceiling   (OpenBLAS)
// The sgemm ceiling of one MLP 784-400-400-10 training step at batch 128: the step's eight GEMMs alone
// (forward x·Wᵀ ×3, weight gradients Δᵀ·x ×3, input gradients Δ·W ×2), timed back to back; no other work.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static float*buf(long n){float*p=malloc(4*n);for(long i=0;i<n;i++)p[i]=rand()/(float)RAND_MAX-0.5f;return p;}
int main(int argc,char**argv){
  int useDnnl=argc>1; int B=128, L[4]={784,400,400,10};
  float *x[4],*w[3],*d[4],*dw[3];
  for(int i=0;i<4;i++){x[i]=buf((long)B*L[i]);d[i]=buf((long)B*L[i]);}
  for(int i=0;i<3;i++){w[i]=buf((long)L[i+1]*L[i]);dw[i]=buf((long)L[i+1]*L[i]);}
  #define G(ta,tb,M,N,K,A,lda,Bm,ldb,C,ldc) do{ if(useDnnl) dnnl_sgemm(ta,tb,M,N,K,1,A,lda,Bm,ldb,0,C,ldc); else cblas_sgemm(CblasRowMajor,ta=='T'?CblasTrans:CblasNoTrans,tb=='T'?CblasTrans:CblasNoTrans,M,N,K,1,A,lda,Bm,ldb,0,C,ldc);}while(0)
  double best=1e9;
  for(int r=0;r<7;r++){ int it=300; double t0=now();
    for(int s=0;s<it;s++){
      for(int l=0;l<3;l++) G('N','T',B,L[l+1],L[l],x[l],L[l],w[l],L[l],x[l+1],L[l+1]);
      for(int l=2;l>=0;l--){ G('T','N',L[l+1],L[l],B,d[l+1],L[l+1],x[l],L[l],dw[l],L[l]); if(l>0) G('N','N',B,L[l],L[l+1],d[l+1],L[l+1],w[l],L[l],d[l],L[l]); }
    }
    double t=(now()-t0)/it; if(t<best)best=t; }
  printf("%s: %.1f µs per step's GEMMs → ceiling %.0f samples/s\n", useDnnl?"oneDNN sgemm":"OpenBLAS sgemm", best*1e6, B/best);
}
